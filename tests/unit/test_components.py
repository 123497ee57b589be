"""Encoder components a family picks, each against its definition: rotary positions, sliding
window masks, the gated feed-forward, the pre-LN block, mean pooling; config checks of the
component switches; and `register_family`, a family from outside the package."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from bertforge import FAMILIES, ConfigError, Encoder, EncoderConfig, register_family
from bertforge.families.bert import BERT
from bertforge.heads.classification import mean_pool
from bertforge.models.block import PreNormBlock
from bertforge.models.ffn import GatedFeedForward
from bertforge.models.masks import AttentionInputs, band, layer_masks
from bertforge.models.rotary import Rotary, rotate

SMALL = {
    "vocab_size": 50,
    "hidden_size": 16,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "intermediate_size": 24,
    "max_position_embeddings": 64,
    "type_vocab_size": 0,
}


def modern(**changes: object) -> EncoderConfig:
    """ModernBERT's components on a tiny BERT: rotary, pre-LN, GeGLU, no biases, a window."""
    components = {
        "position": "rotary",
        "norm_placement": "pre",
        "feed_forward": "glu",
        "attention_bias": False,
        "mlp_bias": False,
        "norm_bias": False,
        "layer_types": ["full_attention", "sliding_attention", "sliding_attention"],
        "local_attention": 4,
    }
    return EncoderConfig(**{**SMALL, **components, **changes})


def test_rotary_is_the_complex_rotation_and_depends_on_distance_only() -> None:
    torch.manual_seed(0)
    d, theta = 8, 100.0
    rotary = Rotary(d, theta)
    x = torch.randn(1, 1, 5, d)
    cos, sin = rotary(torch.arange(5))
    turned = rotate(x, cos, sin)
    # Pair (k, k + d/2) is the complex number x_k + i x_{k+d/2}, turned by pos * theta^(-2k/d).
    z = torch.complex(x[..., : d // 2], x[..., d // 2 :])
    angle = torch.arange(5)[:, None] * theta ** (-torch.arange(0, d, 2) / d)
    want = z * torch.polar(torch.ones_like(angle), angle)
    assert_close(turned, torch.cat((want.real, want.imag), dim=-1), atol=1e-6, rtol=1e-6)
    # q_i . k_j is unchanged when both move by the same offset.
    q, k = torch.randn(d), torch.randn(d)

    def score(i: int, j: int) -> torch.Tensor:
        c, s = rotary(torch.tensor([i, j]))
        rq = rotate(q.view(1, 1, 1, d).expand(1, 1, 2, d), c, s)[0, 0, 0]
        rk = rotate(k.view(1, 1, 1, d).expand(1, 1, 2, d), c, s)[0, 0, 1]
        return rq @ rk

    assert_close(score(3, 7), score(10, 14), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(score(3, 7), score(3, 9))


def test_window_masks() -> None:
    assert band(5, 1, torch.device("cpu")).int().tolist() == [
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 0, 1, 1],
    ]
    config = modern(local_attention=4)  # 2 either side
    attention = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    masks = layer_masks(config, attention, 6, torch.device("cpu"))
    assert masks["full_attention"].shape == (2, 1, 1, 6)
    local = masks["sliding_attention"]
    assert local.shape == (2, 1, 6, 6)
    assert local[1, 0, 0].int().tolist() == [1, 1, 1, 0, 0, 0]
    assert local[1, 0, 3].int().tolist() == [0, 1, 1, 1, 0, 0]  # padding stays masked
    # A window wider than the input is no window at all, and nothing padded needs no mask.
    short = layer_masks(config, torch.ones(2, 3, dtype=torch.long), 3, torch.device("cpu"))
    assert short == {"full_attention": None, "sliding_attention": None}


def test_sliding_window_attention_sees_only_its_window() -> None:
    torch.manual_seed(0)
    config = modern(local_attention=4, position="none")
    model = Encoder(config).eval()
    attn = model.layers[1].attn
    assert attn.layer_type == "sliding_attention"
    x = torch.randn(2, 9, 16)
    masks = layer_masks(config, torch.ones(2, 9, dtype=torch.long), 9, x.device)
    with torch.no_grad():
        out, probs = attn(x, AttentionInputs(masks), return_probs=True)
        fast, _ = attn(x, AttentionInputs(masks))
    assert_close(out, fast, atol=1e-6, rtol=1e-6)  # by hand == SDPA
    far = ~band(9, 2, x.device)
    assert float(probs[..., far].abs().max()) == 0.0
    # By hand: query i attends to keys i-2..i+2 only.
    with torch.no_grad():
        q, k, v = attn.qkv(x).view(2, 9, 3, 2, 8).permute(2, 0, 3, 1, 4)
        rows = []
        for i in range(9):
            lo, hi = max(0, i - 2), min(9, i + 3)
            w = (q[..., i : i + 1, :] @ k[..., lo:hi, :].transpose(-1, -2)) / math.sqrt(8)
            rows.append(w.softmax(-1) @ v[..., lo:hi, :])
        want = attn.out(torch.cat(rows, dim=-2).transpose(1, 2).reshape(2, 9, 16))
    assert_close(out, want, atol=1e-6, rtol=1e-6)


def test_gated_feed_forward_and_pre_norm_block_follow_their_formulas() -> None:
    torch.manual_seed(0)
    config = modern(layer_types=None)
    ffn = GatedFeedForward(config)
    x = torch.randn(4, 16)
    w_in, w_gate = ffn.up.weight.chunk(2, dim=0)
    assert_close(ffn(x), F.gelu(x @ w_in.T) * (x @ w_gate.T) @ ffn.down.weight.T)
    first, second = PreNormBlock(config, 0).eval(), PreNormBlock(config, 1).eval()
    assert first.attn_norm is None and second.attn_norm is not None
    seq = torch.randn(2, 5, 16)
    inputs = AttentionInputs({"full_attention": None})
    with torch.no_grad():
        out, _ = second(seq, inputs)
        h = seq + second.attn(second.attn_norm(seq), inputs)[0]
        assert_close(out, h + second.ffn(second.ffn_norm(h)))


def test_mean_pool() -> None:
    hidden = torch.arange(12.0).view(2, 3, 2)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0], [6.0, 7.0]]
    assert_close(mean_pool(hidden, None), hidden.mean(dim=1))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"local_attention": 7}, "local_attention=7: a sliding window must be an even number"),
        ({"layer_types": ["full_attention"]}, "one of full_attention, sliding_attention per layer"),
        ({"layer_types": ["full_attention", "local", "local"]}, "unknown layer_types 'local'"),
        ({"norm_placement": "sandwich"}, "unknown norm_placement 'sandwich'; choose one of post"),
        ({"feed_forward": "swiglu"}, "unknown feed_forward 'swiglu'; choose one of mlp, glu"),
        ({"classifier_pooling": "max"}, "unknown classifier_pooling 'max'"),
        ({"rope_theta": 0.0}, "rope_theta must be positive"),
    ],
)
def test_component_switches_are_checked(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        modern(**changes)


@pytest.fixture
def own_family() -> Iterator[str]:
    """A user's family: BERT's layout under a model_type of its own, with a GLU feed-forward."""
    spec = dataclasses.replace(
        BERT,
        name="glubert",
        doc="BERT with a gated feed-forward",
        defaults={"feed_forward": "glu"},
        hf=dataclasses.replace(
            BERT.hf,
            model_type="glubert",
            config=dataclasses.replace(
                BERT.hf.config, fixed={"feed_forward": "glu"}, expect={}, write={}
            ),
        ),
    )
    register_family(spec)
    yield spec.name
    del FAMILIES[spec.name]


def test_a_registered_family_saves_and_loads(tmp_path: Path, own_family: str) -> None:
    config = FAMILIES[own_family].config("tiny", vocab_size=50, max_position_embeddings=16)
    assert config.feed_forward == "glu"
    model = Encoder(config).eval()
    model.save_pretrained(tmp_path)
    again = Encoder.from_pretrained(tmp_path)
    assert again.config == config
    ids = torch.randint(1, 50, (2, 7))
    with torch.no_grad():
        assert_close(again(ids).last_hidden_state, model(ids).last_hidden_state)
    with pytest.raises(ConfigError, match="already registered; pass replace=True"):
        register_family(FAMILIES[own_family])
    assert register_family(FAMILIES[own_family], replace=True).name == own_family


def test_register_family_checks_its_argument() -> None:
    with pytest.raises(ConfigError, match="must be the model_type its checkpoints carry"):
        register_family(dataclasses.replace(BERT, name="other"))
    with pytest.raises(ConfigError, match="takes a Family"):
        register_family("bert")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_packed_documents_equal_each_document_alone(name: str) -> None:
    """With `document_ids`, a row of three documents gives each document's tokens what the
    document alone gives (attention within it, positions from 0), padded and unpadded."""
    pad = 1 if name == "roberta" else 0
    extra = {"embedding_size": 32} if name in ("albert", "electra") else {}
    if name == "modernbert":
        extra = {"local_attention": 4}
    config = FAMILIES[name].config(
        "tiny", vocab_size=100, max_position_embeddings=40, pad_token_id=pad,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **extra,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Encoder(config, add_pooler=False).eval()
    docs = torch.tensor([[1] * 5 + [2] * 7 + [3] * 3 + [0] * 3, [1] * 9 + [2] * 9])
    ids = torch.randint(5, 100, docs.shape).masked_fill(docs == 0, pad)
    mask = (docs > 0).long()
    with torch.no_grad():
        packed = model(ids, mask, document_ids=docs).last_hidden_state
        for row, doc in ((0, 1), (0, 2), (0, 3), (1, 1), (1, 2)):
            alone = docs[row] == doc
            want = model(ids[row][alone][None]).last_hidden_state[0]
            assert_close(packed[row][alone], want, atol=1e-5, rtol=1e-5)
        model.unpad = True
        unpadded = model(ids, mask, document_ids=docs).last_hidden_state
    assert_close(unpadded[mask.bool()], packed[mask.bool()], atol=1e-5, rtol=1e-5)


def test_long_inputs_run_the_window_in_blocks_equal_to_the_dense_mask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past BLOCKED_FROM windows a sliding layer meets only the 3w keys around each block of
    w queries (T x 3w scores, not T x T), with the same outputs, padded or not."""
    from bertforge.models import masks

    torch.manual_seed(0)
    model = Encoder(modern(local_attention=8, max_position_embeddings=128), add_pooler=False)
    model.eval()
    ids = torch.randint(1, 50, (2, 61))
    attention = torch.ones_like(ids)
    attention[1, 40:] = 0
    built = layer_masks(model.config, attention, 61, ids.device)
    assert isinstance(built["sliding_attention"], masks.WindowBlocks)
    assert built["sliding_attention"].mask.shape == (2, 16, 4, 12)  # (B, nb, w, 3w)
    with torch.no_grad():
        blocked = model(ids, attention).last_hidden_state
        model.unpad = True
        unpadded = model(ids, attention).last_hidden_state
        model.unpad = False
        with_probs = model(ids, attention, output_attentions=True)  # (T, T) wanted: dense
        monkeypatch.setattr(masks, "BLOCKED_FROM", 10**9)
        dense = model(ids, attention).last_hidden_state
    real = attention.bool()
    assert_close(blocked[real], dense[real], atol=1e-5, rtol=1e-5)
    assert_close(unpadded[real], dense[real], atol=1e-5, rtol=1e-5)
    assert_close(with_probs.last_hidden_state[real], dense[real], atol=1e-5, rtol=1e-5)
    assert with_probs.attentions[1].shape == (2, 2, 61, 61)
