"""ModernBERT beyond the shared round trip (test_families.py): mean pooling and biases,
both config.json layouts, any attention pattern, the unpadded path and the masked-only MLM
head against the padded one, heads that start from the MLM head as in transformers, and the
configs it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from tiny import batch, choice_batch, hf_model
from torch.testing import assert_close

from bertforge import (
    CheckpointError,
    Encoder,
    MultipleChoice,
    PreTrainingModel,
    SequenceClassifier,
    TokenClassifier,
)
from bertforge.models.encoder import set_unpadded

BIASED = {"attention_bias": True, "mlp_bias": True, "norm_bias": True, "classifier_bias": True}


@pytest.mark.parametrize("extra", [{}, BIASED], ids=["no-bias", "biased"])
@pytest.mark.parametrize(
    ("suffix", "ours", "make_batch"),
    [
        ("ForSequenceClassification", SequenceClassifier, batch),
        ("ForMultipleChoice", MultipleChoice, choice_batch),
    ],
    ids=["sequence", "choice"],
)
def test_mean_pooling_and_biases_both_ways(tmp_path: Path, extra, suffix, ours, make_batch) -> None:
    hf = hf_model("modernbert", suffix, classifier_pooling="mean", **extra)
    hf.save_pretrained(tmp_path / "hf")
    model = ours.from_pretrained(tmp_path / "hf")
    assert model.config.classifier_pooling == "mean"
    assert model.config.attention_bias == bool(extra)
    b = make_batch("modernbert")
    with torch.no_grad():
        want = hf(**b).logits
        assert_close(model(**b), want, atol=1e-5, rtol=1e-5)
    model.save_pretrained(tmp_path / "ours")
    auto = getattr(transformers, "AutoModel" + suffix)
    again, info = auto.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    assert again.config.classifier_pooling == "mean"
    with torch.no_grad():
        assert_close(again.eval()(**b).logits, want, atol=1e-5, rtol=1e-5)


def test_transformers_4_config_layout(tmp_path: Path) -> None:
    """`global_attn_every_n_layers` and flat thetas (4.x) read as transformers reads them."""
    hf = hf_model("modernbert", "Model", num_hidden_layers=4)
    hf.save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    cfg = json.loads(path.read_text())
    for key in ("layer_types", "rope_parameters"):
        cfg.pop(key)
    cfg |= {"global_attn_every_n_layers": 2, "global_rope_theta": 5e4, "local_rope_theta": 500.0}
    path.write_text(json.dumps(cfg))
    theirs = transformers.AutoModel.from_pretrained(tmp_path).eval()
    model = Encoder.from_pretrained(tmp_path)
    kinds = ["full_attention", "sliding_attention"] * 2
    assert model.config.layer_types == theirs.config.layer_types == kinds
    assert (model.config.rope_theta, model.config.local_rope_theta) == (5e4, 500.0)
    b = batch("modernbert")
    mask = b["attention_mask"].bool()
    with torch.no_grad():
        want = theirs(**b).last_hidden_state[mask]
        assert_close(model(**b).last_hidden_state[mask], want, atol=1e-5, rtol=1e-5)


def test_any_attention_pattern(tmp_path: Path) -> None:
    kinds = ["sliding_attention", "full_attention", "sliding_attention"]
    hf = hf_model("modernbert", "Model", layer_types=kinds)
    hf.save_pretrained(tmp_path)
    model = Encoder.from_pretrained(tmp_path)
    assert model.config.layer_types == kinds
    b = batch("modernbert")
    mask = b["attention_mask"].bool()
    with torch.no_grad():
        want = hf(**b).last_hidden_state[mask]
        assert_close(model(**b).last_hidden_state[mask], want, atol=1e-5, rtol=1e-5)
        # The window matters at this length: without it the outputs move.
        wide = Encoder(model.config.replace(local_attention=64), add_pooler=False).eval()
        wide.load_state_dict(model.state_dict())
        assert (wide(**b).last_hidden_state[mask] - want).abs().max() > 1e-3


def test_unpadded_and_masked_only_head_equal_the_padded_path(tmp_path: Path) -> None:
    hf_model("modernbert", "ForMaskedLM").save_pretrained(tmp_path)
    model = PreTrainingModel.from_pretrained(tmp_path)
    b = batch("modernbert")
    mask = b["attention_mask"].bool()
    picked = mask.clone()
    picked[:, ::2] = False  # predict some of the real tokens only
    with torch.no_grad():
        dense = model(**b)  # padded layout, logits at every position: (B, T, V)
        set_unpadded(model)
        sparse = model(**b, masked_positions=picked)  # real tokens only, (M, V)
    assert model.encoder.unpad
    hidden = sparse.last_hidden_state[mask]
    assert_close(hidden, dense.last_hidden_state[mask], atol=1e-5, rtol=1e-5)
    assert_close(sparse.mlm_logits, dense.mlm_logits[picked], atol=1e-5, rtol=1e-5)


def test_task_heads_start_from_the_mlm_head_as_in_transformers(tmp_path: Path) -> None:
    hf_model("modernbert", "ForMaskedLM").save_pretrained(tmp_path)
    theirs = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path, num_labels=3)
    model = TokenClassifier.from_pretrained(tmp_path, num_labels=3)
    mlm = PreTrainingModel.from_pretrained(tmp_path)
    assert_close(model.head.dense.weight, mlm.mlm.transform.weight)
    assert_close(model.head.norm.weight, mlm.mlm.norm.weight)
    assert_close(model.head.dense.weight, theirs.head.dense.weight)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"local_attention": 5}, r"local_attention=5: a sliding window must be an even number"),
        (
            {"rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 2.0}}},
            r"rope_type='linear': only the default",
        ),
        ({"tie_word_embeddings": False}, r"tie_word_embeddings=False is not supported"),
    ],
    ids=["odd-window", "scaled-rope", "untied"],
)
def test_configs_it_refuses_are_named(tmp_path: Path, change: dict, message: str) -> None:
    hf_model("modernbert", "Model").save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(CheckpointError, match=message):
        Encoder.from_pretrained(tmp_path)
