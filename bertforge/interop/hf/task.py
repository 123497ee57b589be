"""Task-head metadata (label names, problem type, head dropout) <-> HF config.json fields.

Labels and problem type belong to HF's generic `PretrainedConfig`; the dropout field is the
family's own (`classifier_dropout`, ALBERT's `classifier_dropout_prob`, DistilBERT's
`seq_classif_dropout`, ...), named per task head in `HFLayout.dropout_fields`. Heads only ever
see `TaskMeta`, never the HF field names.
"""

from __future__ import annotations

from typing import Any

from bertforge.errors import CheckpointError
from bertforge.families import HFLayout
from bertforge.pretrained import TaskMeta

# Our problem names <-> HF `problem_type`. HF's multi-label mode has no head here yet.
PROBLEMS = {"single_label": "single_label_classification", "regression": "regression"}


def _default_name(i: int) -> str:
    return f"LABEL_{i}"


def task_from_hf(hf: dict[str, Any], layout: HFLayout, kind: str | None, source: str) -> TaskMeta:
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
    if num_labels is None:
        # transformers' default; version 5 leaves the default two labels out of config.json.
        num_labels = 2
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
    dropout_field = layout.dropout_fields.get(kind) if kind else None
    dropout = hf.get(dropout_field) if dropout_field else None
    return TaskMeta(num_labels, labels, problem, dropout)


def task_to_hf(meta: TaskMeta, layout: HFLayout, kind: str | None) -> dict[str, Any]:
    """The config.json fields transformers reads to rebuild the same head."""
    out: dict[str, Any] = {}
    if meta.num_labels is not None:
        names = meta.labels or [_default_name(i) for i in range(meta.num_labels)]
        out["id2label"] = {str(i): name for i, name in enumerate(names)}
        out["label2id"] = {name: i for i, name in enumerate(names)}
        out["num_labels"] = meta.num_labels
    if meta.problem is not None:
        out["problem_type"] = PROBLEMS[meta.problem]
    dropout_field = layout.dropout_fields.get(kind) if kind else None
    if meta.classifier_dropout is not None and dropout_field:
        out[dropout_field] = meta.classifier_dropout
    return out
