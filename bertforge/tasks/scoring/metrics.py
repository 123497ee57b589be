"""Evaluation metrics for fine-tuning tasks, by name, as plain floats.

Scale: every metric here is a fraction in [0, 1] (correlations in [-1, 1]), *not* a percentage.
SQuAD's exact match / F1 follow the official script's 0–100 scale instead (see `squad_eval`).
scipy, scikit-learn and seqeval are imported when a metric first needs them: together they
cost more than a second at start-up, which every command would otherwise pay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bertforge.errors import ConfigError

logger = logging.getLogger(__name__)

Tags = Sequence[Sequence[str]]


def _check(predictions: Sequence[Any], labels: Sequence[Any]) -> None:
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels; must match")
    if len(labels) == 0:
        raise ValueError("no predictions to score; the evaluation set is empty")


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Fraction of predictions equal to their label."""
    _check(predictions, labels)
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def binary_f1(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """F1 of the positive class 1 (MRPC/QQP convention); 0.0 when it never occurs."""
    _check(predictions, labels)
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, pos_label=1, average="binary", zero_division=0))


def mcc(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Matthews correlation coefficient in [-1, 1]; 0.0 when undefined (a constant column)."""
    _check(predictions, labels)
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(labels, predictions))


def _correlation(kind: str, predictions: Sequence[float], labels: Sequence[float]) -> float:
    _check(predictions, labels)
    x, y = np.asarray(predictions, dtype=float), np.asarray(labels, dtype=float)
    # scipy returns NaN (with a warning) for constant input; report 0.0 like sklearn's MCC so
    # "best checkpoint" comparisons keep working early in training.
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        logger.warning("%s is undefined for constant predictions or labels; reporting 0.0", kind)
        return 0.0
    from scipy import stats

    fn = stats.pearsonr if kind == "pearson" else stats.spearmanr
    return float(fn(x, y)[0])


def pearson(predictions: Sequence[float], labels: Sequence[float]) -> float:
    """Pearson correlation in [-1, 1] (×1, not ×100); 0.0 for constant input."""
    return _correlation("pearson", predictions, labels)


def spearman(predictions: Sequence[float], labels: Sequence[float]) -> float:
    """Spearman rank correlation (ties get average ranks) in [-1, 1]; 0.0 for constant input."""
    return _correlation("spearman", predictions, labels)


def _entity_prf(true_tags: Tags, pred_tags: Tags) -> tuple[float, float, float]:
    _check(pred_tags, true_tags)
    for i, (t, p) in enumerate(zip(true_tags, pred_tags, strict=True)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} gold tags but {len(p)} predicted tags")
    from seqeval.metrics import sequence_labeling

    # Default (non-strict) mode = conlleval semantics: an I- tag after O or another type opens
    # a new entity, so IOB1 and IOB2 spellings of the same entities score the same.
    p, r, f, _ = sequence_labeling.precision_recall_fscore_support(
        [list(t) for t in true_tags],
        [list(p) for p in pred_tags],
        average="micro",
        zero_division=0,
    )
    return float(p), float(r), float(f)


def entity_precision(pred_tags: Tags, true_tags: Tags) -> float:
    """Micro entity-level precision (seqeval default mode, CoNLL semantics)."""
    return _entity_prf(true_tags, pred_tags)[0]


def entity_recall(pred_tags: Tags, true_tags: Tags) -> float:
    """Micro entity-level recall (seqeval default mode, CoNLL semantics)."""
    return _entity_prf(true_tags, pred_tags)[1]


def entity_f1(pred_tags: Tags, true_tags: Tags) -> float:
    """Micro entity-level F1 (seqeval default mode, CoNLL semantics): the CoNLL-2003 score."""
    return _entity_prf(true_tags, pred_tags)[2]


def entity_report(pred_tags: Tags, true_tags: Tags) -> dict[str, dict[str, float]]:
    """Per entity type: precision, recall, f1 and support (number of gold entities)."""
    _entity_prf(true_tags, pred_tags)  # same validation as the micro scores
    from seqeval.metrics import sequence_labeling

    report = sequence_labeling.classification_report(
        [list(t) for t in true_tags],
        [list(p) for p in pred_tags],
        output_dict=True,
        zero_division=0,
    )
    return {
        name: {key.replace("f1-score", "f1"): float(v) for key, v in scores.items()}
        for name, scores in report.items()
        if not name.endswith(" avg")
    }


METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy,
    "f1": binary_f1,
    "mcc": mcc,
    "pearson": pearson,
    "spearman": spearman,
    "entity_precision": entity_precision,
    "entity_recall": entity_recall,
    "entity_f1": entity_f1,
}


def compute(
    metric_names: Sequence[str], predictions: Sequence[Any], labels: Sequence[Any]
) -> dict[str, float]:
    """Score `predictions` against `labels` with each named metric (see `METRICS`).

    Class metrics take label ids, correlations take floats, entity metrics take tag sequences.
    """
    unknown = [name for name in metric_names if name not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    return {name: METRICS[name](predictions, labels) for name in metric_names}
