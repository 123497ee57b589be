"""Task metrics on crafted cases with hand-computed values."""

from __future__ import annotations

import math

import pytest

from bertforge.errors import ConfigError
from bertforge.tasks.scoring import compute, entity_report
from bertforge.tasks.scoring.metrics import accuracy, binary_f1, mcc, pearson, spearman


def test_accuracy_is_a_fraction() -> None:
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5


def test_binary_f1_of_positive_class() -> None:
    # tp=2 fp=1 fn=1 -> precision 2/3, recall 2/3, F1 2/3
    assert binary_f1([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]) == pytest.approx(2 / 3)
    assert binary_f1([0, 0], [0, 0]) == 0.0  # no positive class at all


def test_mcc_matches_the_2x2_formula() -> None:
    tp, tn, fp, fn = 3, 2, 1, 2
    labels = [1] * tp + [0] * tn + [0] * fp + [1] * fn
    preds = [1] * tp + [0] * tn + [1] * fp + [0] * fn
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert mcc(preds, labels) == pytest.approx(expected)
    assert mcc([1, 1, 1], [0, 1, 0]) == 0.0  # constant predictions: undefined -> 0


def test_pearson_by_hand() -> None:
    # dx = (-1, 0, 1), dy = (-4/3, -1/3, 5/3): r = 3 / sqrt(2 * 42/9)
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / math.sqrt(2 * 42 / 9))


def test_spearman_averages_tied_ranks() -> None:
    # ranks x = (1, 2.5, 2.5, 4), y = (1, 3, 2, 4): r = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))


def test_correlation_of_constant_input_is_zero() -> None:
    assert pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
    assert spearman([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) == 0.0


GOLD_IOB1 = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]  # two adjacent PER entities, one LOC
GOLD_IOB2 = [["B-PER", "I-PER", "B-PER", "O", "B-LOC"]]


def test_entity_f1_treats_iob1_and_iob2_spellings_alike() -> None:
    assert compute(["entity_f1"], GOLD_IOB2, GOLD_IOB1) == {"entity_f1": 1.0}
    assert compute(["entity_f1"], GOLD_IOB1, GOLD_IOB2) == {"entity_f1": 1.0}


def test_entity_scores_by_hand() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    # gold: PER(0-1) LOC(3) ORG(0); pred: PER(0) LOC(3) ORG(0) MISC(1) -> 2 correct
    scores = compute(["entity_precision", "entity_recall", "entity_f1"], pred, gold)
    assert scores["entity_precision"] == pytest.approx(2 / 4)
    assert scores["entity_recall"] == pytest.approx(2 / 3)
    assert scores["entity_f1"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    report = entity_report(pred, gold)
    assert report["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1.0}
    assert report["LOC"]["f1"] == 1.0
    assert report["MISC"]["support"] == 0.0


def test_compute_runs_each_named_metric() -> None:
    out = compute(["accuracy", "f1"], [1, 0, 1], [1, 0, 0])
    assert out == {"accuracy": pytest.approx(2 / 3), "f1": pytest.approx(2 / 3)}


def test_compute_rejects_unknown_metric() -> None:
    with pytest.raises(ConfigError, match=r"unknown metric 'bleu'.*accuracy"):
        compute(["bleu"], [1], [1])


def test_length_mismatch_and_empty_input_are_errors() -> None:
    with pytest.raises(ValueError, match="2 predictions but 3 labels"):
        accuracy([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="empty"):
        mcc([], [])
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        compute(["entity_f1"], [["O"]], [["O", "O"]])
