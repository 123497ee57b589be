"""Label bookkeeping shared by the task heads: how many classes, their names, the problem."""

from __future__ import annotations

from bertforge.errors import CheckpointError, ConfigError
from bertforge.pretrained import TaskMeta

PROBLEMS = ("single_label", "regression")


def check_labels(num_labels: int, labels: list[str] | None) -> None:
    if not isinstance(num_labels, int) or num_labels < 1:
        raise ConfigError(f"num_labels must be a positive integer, got {num_labels!r}")
    if labels is not None:
        if len(labels) != num_labels:
            raise ConfigError(f"{len(labels)} label names given for num_labels={num_labels}")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"label names must be unique, got {labels}")


def check_problem(problem: str, num_labels: int) -> None:
    if problem not in PROBLEMS:
        raise ConfigError(f"unknown problem {problem!r}; choose one of {', '.join(PROBLEMS)}")
    if problem == "regression" and num_labels != 1:
        raise ConfigError(f"regression predicts one value: use num_labels=1, not {num_labels}")


def resolve_labels(
    num_labels: int | None, labels: list[str] | None, task: TaskMeta, has_head: bool
) -> tuple[int, list[str] | None]:
    """The caller's choice first, then the checkpoint's head (only when it has one: a bare
    encoder's config.json carries transformers' default two labels, which mean nothing)."""
    if labels is None and num_labels is None and has_head:
        labels = task.labels
        num_labels = task.num_labels
    if num_labels is None:
        if labels is None:
            raise ConfigError(
                "the checkpoint has no task head to take the label count from; pass "
                "num_labels=... or labels=[...]"
            )
        num_labels = len(labels)
    if has_head and task.num_labels is not None and num_labels != task.num_labels:
        raise CheckpointError(
            f"the checkpoint's head has {task.num_labels} labels, not {num_labels}; to put a "
            "new head on its encoder, save the encoder alone first "
            "(Encoder.from_pretrained(path).save_pretrained(new_path)) and load from there"
        )
    check_labels(num_labels, labels)
    return num_labels, labels
