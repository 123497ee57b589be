"""Task heads and their checkpoints: labels, fresh heads on pretraining checkpoints, heads of
another kind, label-count mismatches (every family's round trip: test_families.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import transformers
from tiny import SMALL, hf_model
from torch.testing import assert_close

from bertforge import (
    CheckpointError,
    ConfigError,
    Encoder,
    EncoderConfig,
    PreTrainingModel,
    SequenceClassifier,
    TokenClassifier,
)

LABELS = ["neg", "neu", "pos"]


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
    hf_model("bert", "ForMaskedLM").save_pretrained(tmp_path)  # no pooler, no classifier
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
    hf_model("bert", "ForTokenClassification", num_labels=3).save_pretrained(tmp_path)
    model = SequenceClassifier.from_pretrained(tmp_path, num_labels=3)
    token = TokenClassifier.from_pretrained(tmp_path)
    assert not torch.equal(model.head.out.weight, token.head.out.weight)


def test_label_count_mismatch_is_explained(tmp_path: Path) -> None:
    hf_model("bert", "ForSequenceClassification", num_labels=3).save_pretrained(tmp_path)
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
