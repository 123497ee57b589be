"""What a fine-tuning run says at the end: a table of the best dev metrics and parameter
counts, and a warning when the model predicts one class for everything."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from bertforge.tasks import TaskSetup

logger = logging.getLogger(__name__)


def report_table(setup: TaskSetup, metrics: dict[str, Any], summary: dict[str, Any]) -> None:
    """Print the best checkpoint's dev metrics and trainable-parameter counts on stderr."""
    table = Table(title=f"{setup.task} ({setup.strategy}): best dev checkpoint")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in {**metrics, **summary}.items():
        if isinstance(value, float):
            table.add_row(name, f"{value:.4f}")
        else:
            table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    Console(stderr=True).print(table)


def warn_single_class(setup: TaskSetup, classes: Counter, what: str) -> bool:
    """Warn when the best checkpoint predicts one class for all of the dev set (a classifier
    that learned the majority class only); returns whether it did."""
    if len(classes) != 1 or setup.labels is None or len(setup.labels) < 2:
        return False
    ((label, count),) = classes.items()
    logger.warning(
        "the best checkpoint predicts %r for every one of the %d dev %s: it has learned the "
        "majority class only; train longer or faster (raise --epochs or --lr)",
        label, count, what,
    )  # fmt: skip
    return True
