"""Encoder components: shapes, variants by config, parameter counts, train/eval behaviour."""

from __future__ import annotations

import pytest
import torch
import transformers

from bertforge import FAMILIES, Encoder, EncoderConfig, PreTrainingModel

TINY = FAMILIES["bert"].config("tiny", vocab_size=200, max_position_embeddings=32)


@pytest.mark.parametrize("preset", ["tiny", "mini", "small", "base"])
def test_parameter_count_equals_transformers(preset: str) -> None:
    config = FAMILIES["bert"].config(preset)
    with torch.device("meta"):
        ours = Encoder(config).num_parameters()
        hf = transformers.BertModel(
            transformers.BertConfig(
                **{
                    k: v
                    for k, v in config.to_dict().items()
                    if k not in ("embedding_size", "position", "model_type")
                }
            )
        ).num_parameters()
    assert ours == hf
    if preset == "base":
        assert 109_000_000 < ours < 110_000_000  # the paper's "110M"


def test_outputs_and_shapes() -> None:
    model = Encoder(TINY).eval()
    ids = torch.randint(1, 200, (3, 10))
    out = model(ids, output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.shape == (3, 10, 128)
    assert out.pooler_output.shape == (3, 128)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    assert out.attentions[0].shape == (3, 2, 10, 10)
    assert torch.allclose(out.attentions[0].sum(-1), torch.ones(3, 2, 10))
    assert Encoder(TINY, add_pooler=False)(ids).pooler_output is None


def test_factorized_embeddings_and_no_positions() -> None:
    config = TINY.replace(embedding_size=32, position="none")
    model = Encoder(config).eval()
    assert model.embeddings.tokens.weight.shape == (200, 32)
    assert model.embeddings.positions is None
    ids = torch.randint(1, 200, (2, 40))  # longer than max_position_embeddings: no positions
    assert model(ids).last_hidden_state.shape == (2, 40, 128)
    lm = PreTrainingModel(config)
    assert lm(ids).mlm_logits.shape == (2, 40, 200)  # decoder in the 32-dim embedding space


def test_dropout_only_in_training() -> None:
    model = Encoder(TINY)
    ids = torch.randint(1, 200, (2, 8))
    model.train()
    assert not torch.equal(model(ids).last_hidden_state, model(ids).last_hidden_state)
    model.eval()
    assert torch.equal(model(ids).last_hidden_state, model(ids).last_hidden_state)
    quiet = Encoder(TINY.replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    quiet.train()
    assert torch.equal(quiet(ids).last_hidden_state, quiet(ids).last_hidden_state)


def test_padding_mask_blocks_attention_to_pad() -> None:
    model = Encoder(TINY).eval()
    ids = torch.randint(1, 200, (1, 8))
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    changed = ids.clone()
    changed[0, 5:] = torch.randint(1, 200, (3,))
    a = model(ids, mask).last_hidden_state[0, :5]
    b = model(changed, mask).last_hidden_state[0, :5]
    torch.testing.assert_close(a, b)


def test_gradients_reach_every_parameter() -> None:
    model = PreTrainingModel(TINY)
    ids = torch.randint(1, 200, (2, 8))
    out = model(ids, token_type_ids=torch.ones_like(ids))
    (out.mlm_logits.sum() + out.nsp_logits.sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_config_dict_round_trip() -> None:
    config = FAMILIES["bert"].config("small", embedding_size=128)
    assert EncoderConfig.from_dict(config.to_dict()) == config
