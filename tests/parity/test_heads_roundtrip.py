"""Fine-tuning heads round-trip between transformers and bertforge with equal logits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import transformers
from small_bert import SMALL, batch, hf_model
from torch.testing import assert_close

from bertforge import (
    CheckpointError,
    ConfigError,
    Encoder,
    EncoderConfig,
    MultipleChoice,
    PreTrainingModel,
    QuestionAnswering,
    SequenceClassifier,
    TokenClassifier,
)

LABELS = ["neg", "neu", "pos"]


def choice_batch() -> dict[str, torch.Tensor]:
    """(B=2, C=3, T) built from the (3, T) batch: every example sees the choices reordered."""
    b = batch()
    return {k: torch.stack([v, v.flip(0)]) for k, v in b.items()}


def logits(out: object) -> torch.Tensor:
    """Our output or HF's, as one tensor (QA: start and end stacked on the last dim)."""
    if isinstance(out, tuple):
        return torch.stack(out, dim=-1)
    if hasattr(out, "start_logits"):
        return torch.stack([out.start_logits, out.end_logits], dim=-1)
    return out.logits if hasattr(out, "logits") else out


# (ours, HF class, Auto class, HF config extras, our from_pretrained options, inputs)
CASES: dict[str, tuple[type, type, type, dict, dict, Callable[[], dict]]] = {
    "sequence": (
        SequenceClassifier,
        transformers.BertForSequenceClassification,
        transformers.AutoModelForSequenceClassification,
        {"id2label": dict(enumerate(LABELS)), "problem_type": "single_label_classification"},
        {},
        batch,
    ),
    "regression": (
        SequenceClassifier,
        transformers.BertForSequenceClassification,
        transformers.AutoModelForSequenceClassification,
        {"num_labels": 1, "problem_type": "regression", "classifier_dropout": 0.2},
        {},
        batch,
    ),
    "token": (
        TokenClassifier,
        transformers.BertForTokenClassification,
        transformers.AutoModelForTokenClassification,
        {"id2label": dict(enumerate(LABELS))},
        {},
        batch,
    ),
    "qa": (
        QuestionAnswering,
        transformers.BertForQuestionAnswering,
        transformers.AutoModelForQuestionAnswering,
        {},
        {},
        batch,
    ),
    "choice": (
        MultipleChoice,
        transformers.BertForMultipleChoice,
        transformers.AutoModelForMultipleChoice,
        {},
        {},
        choice_batch,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_head_roundtrip(tmp_path: Path, case: str) -> None:
    ours_cls, hf_cls, auto_cls, extra, options, make_batch = CASES[case]
    hf = hf_model(hf_cls, **extra)
    hf.save_pretrained(tmp_path / "hf")
    ours = ours_cls.from_pretrained(tmp_path / "hf", **options)
    b = make_batch()
    keep = b["attention_mask"].bool()
    with torch.no_grad():
        want = logits(hf(**b))
        got = logits(ours(**b))
    if ours_cls in (TokenClassifier, QuestionAnswering):  # per token: compare real tokens only
        want, got = want[keep], got[keep]
    assert_close(got, want, atol=1e-5, rtol=1e-5)

    ours.save_pretrained(tmp_path / "ours")
    again, info = auto_cls.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert type(again) is hf_cls
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    assert again.config.to_dict()["id2label"] == hf.config.to_dict()["id2label"]
    assert again.config.problem_type == hf.config.problem_type
    with torch.no_grad():
        back = logits(again.eval()(**b))
    if ours_cls in (TokenClassifier, QuestionAnswering):
        back = back[keep]
    assert_close(back, want, atol=1e-5, rtol=1e-5)


def test_labels_survive_the_round_trip(tmp_path: Path) -> None:
    model = SequenceClassifier(EncoderConfig(**SMALL), 3, labels=LABELS)
    model.save_pretrained(tmp_path)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert hf.config.id2label == dict(enumerate(LABELS))
    assert hf.config.label2id == {n: i for i, n in enumerate(LABELS)}
    loaded = SequenceClassifier.from_pretrained(tmp_path)
    assert (loaded.num_labels, loaded.labels, loaded.problem) == (3, LABELS, "single_label")


def test_fresh_head_on_a_pretraining_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hf_model(transformers.BertForMaskedLM).save_pretrained(tmp_path)  # no pooler, no classifier
    with pytest.raises(ConfigError, match="num_labels"):
        SequenceClassifier.from_pretrained(tmp_path)
    with caplog.at_level(logging.INFO, logger="bertforge"):
        model = SequenceClassifier.from_pretrained(tmp_path, labels=LABELS)
    assert "encoder.pooler.dense" in caplog.text and "head.out" in caplog.text
    mlm = PreTrainingModel.from_pretrained(tmp_path)
    assert_close(model.encoder.embeddings.tokens.weight, mlm.encoder.embeddings.tokens.weight)
    assert model.head.out.weight.shape == (3, SMALL["hidden_size"])
    assert float(model.head.out.bias.detach().abs().max()) == 0.0


def test_other_head_kinds_are_not_loaded(tmp_path: Path) -> None:
    """A token classifier's `classifier` has the right shape but the wrong meaning."""
    hf_model(transformers.BertForTokenClassification, num_labels=3).save_pretrained(tmp_path)
    model = SequenceClassifier.from_pretrained(tmp_path, num_labels=3)
    token = TokenClassifier.from_pretrained(tmp_path)
    assert not torch.equal(model.head.out.weight, token.head.out.weight)


def test_label_count_mismatch_is_explained(tmp_path: Path) -> None:
    hf_model(transformers.BertForSequenceClassification, num_labels=3).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="head has 3 labels, not 5"):
        SequenceClassifier.from_pretrained(tmp_path, num_labels=5)
    Encoder.from_pretrained(tmp_path).save_pretrained(tmp_path / "encoder")
    assert SequenceClassifier.from_pretrained(tmp_path / "encoder", num_labels=5).num_labels == 5


def test_minilm_starts_a_classifier(minilm_path: Path) -> None:
    model = SequenceClassifier.from_pretrained(minilm_path, labels=["a", "b"])
    cfg = model.config
    # MiniLM (sentence-transformers' BertModel) ships a pooler: it is loaded, not re-drawn.
    hf = transformers.AutoModel.from_pretrained(minilm_path)
    assert_close(model.encoder.pooler.dense.weight, hf.pooler.dense.weight)
    w = model.head.out.weight.detach()
    assert w.shape == (2, cfg.hidden_size)
    assert abs(float(w.std()) - cfg.initializer_range) < 0.3 * cfg.initializer_range
    assert float(model.head.out.bias.detach().abs().max()) == 0.0
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        assert model(ids).shape == (1, 2)
