"""Task-head metadata (label names, problem type, classifier dropout) <-> HF config.json fields.

These fields belong to HF's generic `PretrainedConfig`, not to one family, so every adapter
shares this translation. Heads only ever see `TaskMeta`, never the HF field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bertforge.errors import CheckpointError

# Our problem names <-> HF `problem_type`. HF's multi-label mode has no head here yet.
PROBLEMS = {"single_label": "single_label_classification", "regression": "regression"}


@dataclass(frozen=True)
class TaskMeta:
    """What a task head needs from, and writes to, a checkpoint's config."""

    num_labels: int | None = None
    labels: list[str] | None = None  # names in id order; None when the config has only LABEL_i
    problem: str | None = None  # "single_label" | "regression" | None (infer from num_labels)
    classifier_dropout: float | None = None  # None: the encoder's hidden_dropout_prob


def _default_name(i: int) -> str:
    return f"LABEL_{i}"


def task_from_hf(hf: dict[str, Any], source: str) -> TaskMeta:
    id2label = hf.get("id2label")
    labels: list[str] | None = None
    num_labels = hf.get("num_labels")
    if isinstance(id2label, dict) and id2label:
        try:
            by_id = {int(k): str(v) for k, v in id2label.items()}
        except ValueError:
            raise CheckpointError(f"{source}: id2label keys must be integers") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise CheckpointError(f"{source}: id2label ids must be 0..{len(by_id) - 1}")
        names = [by_id[i] for i in range(len(by_id))]
        num_labels = len(names)
        # transformers writes LABEL_i when no names were given; those are not real names.
        if names != [_default_name(i) for i in range(len(names))]:
            labels = names
    problem_type = hf.get("problem_type")
    problem = None
    if problem_type is not None:
        inverse = {v: k for k, v in PROBLEMS.items()}
        if problem_type not in inverse:
            raise CheckpointError(
                f"{source}: problem_type {problem_type!r} is not supported; "
                f"supported: {', '.join(inverse)}"
            )
        problem = inverse[problem_type]
    return TaskMeta(num_labels, labels, problem, hf.get("classifier_dropout"))


def task_to_hf(meta: TaskMeta) -> dict[str, Any]:
    """The config.json fields transformers reads to rebuild the same head."""
    out: dict[str, Any] = {}
    if meta.num_labels is not None:
        names = meta.labels or [_default_name(i) for i in range(meta.num_labels)]
        out["id2label"] = {str(i): name for i, name in enumerate(names)}
        out["label2id"] = {name: i for i, name in enumerate(names)}
        out["num_labels"] = meta.num_labels
    if meta.problem is not None:
        out["problem_type"] = PROBLEMS[meta.problem]
    if meta.classifier_dropout is not None:
        out["classifier_dropout"] = meta.classifier_dropout
    return out
