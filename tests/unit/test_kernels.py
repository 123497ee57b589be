"""The flex and varlen attention kernels (`models/kernels.py`) against SDPA: padded and on the
unpadded stream, with sliding windows, padding and packed documents; the stream's sequence
bounds; the backends' refusals. varlen_attn runs on CUDA only: its test waits for a GPU."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention.flex_attention import flex_attention
from torch.testing import assert_close

from bertforge import FAMILIES, ConfigError, DataError, Encoder
from bertforge.models import kernels
from bertforge.models.encoder import set_attention_backend, use_attention_kernel
from bertforge.models.unpad import Packing
from bertforge.pretraining.recipe import load_recipe


def tiny(name: str, **changes: object) -> Encoder:
    settings = {
        "vocab_size": 100,
        "max_position_embeddings": 64,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        **({"local_attention": 4} if name == "modernbert" else {}),
        **changes,
    }
    config = FAMILIES[name].config("tiny", **settings)
    torch.manual_seed(0)
    return Encoder(config, add_pooler=False).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two rows of 18: padding, and three packed documents with padding."""
    docs = torch.tensor([[1] * 13 + [0] * 5, [1] * 5 + [2] * 7 + [3] * 3 + [0] * 3])
    ids = torch.randint(5, 100, docs.shape, generator=torch.Generator().manual_seed(1))
    return ids.masked_fill(docs == 0, 0), (docs > 0).long(), docs


@pytest.fixture
def eager_flex(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense reference math of flex_attention: the same masks, no compile time."""
    monkeypatch.setattr(kernels, "_compiled_flex", lambda: flex_attention)


@pytest.mark.usefixtures("eager_flex")
@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("name", ["modernbert", "bert"])
@pytest.mark.parametrize("unpadded", [False, True], ids=["padded", "stream"])
@pytest.mark.parametrize("packed", [False, True], ids=["padding", "documents"])
def test_flex_equals_sdpa(name: str, unpadded: bool, packed: bool) -> None:
    model = tiny(name)
    ids, mask, docs = batch()
    documents = docs if packed else None
    real = mask.bool()
    with torch.no_grad():
        want = model(ids, mask, document_ids=documents).last_hidden_state
        set_attention_backend(model, "flex")
        model.unpad = unpadded
        got = model(ids, mask, document_ids=documents).last_hidden_state
    assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


def test_compiled_flex_equals_sdpa_and_skips_blocks_outside_the_window() -> None:
    """The fused kernel (compiled on CPU, forward only) on a 600-token input with a window
    of 64 and padding: equal to SDPA; of 640 tokens in blocks of 128, 13 of 25 computed."""
    model = tiny("modernbert", local_attention=128, max_position_embeddings=640)
    ids = torch.randint(5, 100, (2, 600), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, 450:] = 0
    with torch.no_grad():
        want = model(ids, mask).last_hidden_state
        set_attention_backend(model, "flex")
        model.unpad = True
        got = model(ids, mask).last_hidden_state
    real = mask.bool()
    assert_close(got[real], want[real], atol=1e-4, rtol=1e-4)
    group = torch.ones(1, 640, dtype=torch.long)
    sliding = kernels.flex_masks(model.config, group, torch.arange(640)[None])["sliding_attention"]
    assert sliding.sparsity() == pytest.approx(100 * (1 - 13 / 25))  # 5 x 5 blocks, 13 kept


@pytest.mark.skipif(not torch.cuda.is_available(), reason="varlen_attn runs on CUDA only")
@pytest.mark.parametrize("packed", [False, True], ids=["padding", "documents"])
def test_varlen_equals_sdpa_on_cuda(packed: bool) -> None:
    model = tiny("modernbert").cuda().to(torch.bfloat16)
    ids, mask, docs = (t.cuda() for t in batch())
    documents = docs if packed else None
    real = mask.bool()
    with torch.no_grad():
        want = model(ids, mask, document_ids=documents).last_hidden_state
        set_attention_backend(model, "varlen")
        got = model(ids, mask, document_ids=documents).last_hidden_state
    assert_close(got[real].float(), want[real].float(), atol=2e-2, rtol=2e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the kernels train on CUDA only")
@pytest.mark.parametrize("backend", ["flex", "varlen"])
def test_kernels_train_on_cuda_with_the_gradients_of_sdpa(backend: str) -> None:
    """Unpadded, packed documents, bf16: the loss's gradients through the kernel equal
    SDPA's (within bf16 rounding)."""
    ids, mask, docs = (t.cuda() for t in batch())

    def gradients(kernel: str) -> dict[str, torch.Tensor]:
        model = tiny("modernbert").cuda().train()
        model.unpad = True
        set_attention_backend(model, kernel)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(ids, mask, document_ids=docs).last_hidden_state
        out[mask.bool()].float().pow(2).mean().backward()
        return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    want, got = gradients("sdpa"), gradients(backend)
    assert want.keys() == got.keys()
    for name in want:
        assert_close(got[name], want[name], atol=2e-2, rtol=5e-2, msg=name)


def test_stream_sequence_bounds() -> None:
    """Right padding: one run per (row, document) and per row's padding rows kept."""
    docs = batch()[2]
    packing = Packing.for_stream(docs)
    group, sizes = packing.groups(docs)
    cu_seqlens, longest = kernels.sequence_bounds(group, packing.indices % 18)
    # 28 real tokens, bucketed to 28: rows 13 | 5, 7, 3 and no padding rows.
    assert cu_seqlens.tolist() == [0, 13, 18, 25, 28]
    assert longest == 13 and sizes.sum() == len(packing.indices)
    holes = torch.tensor([[1, 1, 0, 1, 1, 1]])
    packing = Packing.for_stream(holes)
    with pytest.raises(DataError, match="padding between the tokens of a row"):
        kernels.sequence_bounds(packing.groups(holes)[0], packing.indices % 6)


def test_backends_refuse_what_they_cannot_run() -> None:
    with pytest.raises(ConfigError, match="choose one of sdpa, flex, varlen"):
        set_attention_backend(tiny("bert"), "flash")
    deberta = FAMILIES["deberta-v2"].config("tiny", vocab_size=100)
    with pytest.raises(ConfigError, match="disentangled positions"):
        set_attention_backend(Encoder(deberta), "flex")
    model = tiny("bert", attention_probs_dropout_prob=0.1).train()
    set_attention_backend(model, "flex")
    ids, mask, _ = batch()
    with pytest.raises(ConfigError, match=r"attention_probs_dropout_prob=0\.1: set it to 0"):
        model(ids, mask)


def test_pretraining_picks_a_kernel_it_can_train_with() -> None:
    with pytest.raises(ConfigError, match=r"train\.attention='flash'; choose one of"):
        load_recipe("modernbert-mini.toml", ["train.attention=flash"])
    recipe = load_recipe("modernbert-mini.toml", ["train.attention=varlen"])
    assert recipe.train.attention == "varlen"
    with pytest.raises(ConfigError, match="trains on CUDA only"):
        use_attention_kernel(tiny("modernbert"), "flex", "cpu")
