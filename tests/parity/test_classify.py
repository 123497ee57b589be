"""`inference.classify` gives transformers' label and probability for every text, in input
order, for single texts, pairs and regression."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from bertforge import inference
from bertforge.architectures import SequenceClassifier
from bertforge.errors import DataError
from bertforge.tokenization import Tokenizer

TEXTS = ["a gripping, funny film", "dull", "the plot never quite holds together, sadly", "ok"]
PAIRS = ["a film", "boring and long", "it falls apart", "fine"]


def _saved(minilm_path: Path, tmp_path: Path, **options: object) -> Path:
    torch.manual_seed(0)
    out = tmp_path / "model"
    model = transformers.BertForSequenceClassification.from_pretrained(minilm_path, **options)
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return out


def _reference(path: Path, pairs: list[str] | None) -> torch.Tensor:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    batch = tok(TEXTS, pairs, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("pairs", [None, PAIRS])
def test_labels_and_probabilities_match_transformers(
    minilm_path: Path, tmp_path: Path, pairs: list[str] | None
) -> None:
    names = ["neg", "neu", "pos"]
    path = _saved(minilm_path, tmp_path, id2label=dict(enumerate(names)),
                  label2id={n: i for i, n in enumerate(names)})  # fmt: skip
    model = SequenceClassifier.from_pretrained(path).eval()
    got = inference.classify(model, Tokenizer.from_pretrained(path), TEXTS, pairs, batch_size=3)
    probs = _reference(path, pairs).softmax(-1)
    assert [g.label for g in got] == [names[i] for i in probs.argmax(-1).tolist()]
    torch.testing.assert_close(torch.tensor([g.score for g in got]), probs.max(-1).values)


def test_regression_returns_the_value(minilm_path: Path, tmp_path: Path) -> None:
    path = _saved(minilm_path, tmp_path, num_labels=1)
    model = SequenceClassifier.from_pretrained(path).eval()
    got = inference.classify(model, Tokenizer.from_pretrained(path), TEXTS, PAIRS)
    assert {g.label for g in got} == {"score"}
    expected = _reference(path, PAIRS)[:, 0]
    torch.testing.assert_close(torch.tensor([g.score for g in got]), expected)


def test_pairs_must_match_texts(minilm_path: Path, tmp_path: Path) -> None:
    # transformers 5 leaves its default two labels out of config.json: still two labels.
    path = _saved(minilm_path, tmp_path, num_labels=2)
    model = SequenceClassifier.from_pretrained(path)
    assert (model.num_labels, model.labels) == (2, None)
    with pytest.raises(DataError, match="4 texts but 2 pairs"):
        inference.classify(model, Tokenizer.from_pretrained(path), TEXTS, PAIRS[:2])
