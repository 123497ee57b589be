"""Progress bars for long jobs: rows/s (or steps/s), tokens/s and ETA on stderr.

On a terminal the bar redraws in place. When stderr is a file or a pipe (nohup, CI, a
scheduler's log), a redrawn bar would show nothing until the job ends, so the same columns are
printed as one plain line every `log_every_s` seconds instead.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Rate of `completed` (rows) or of a numeric task field such as `tokens`."""

    def __init__(self, unit: str, field: str | None = None) -> None:
        super().__init__()
        self.unit, self.field = unit, field

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        done = task.completed if self.field is None else task.fields.get(self.field, 0)
        rate = done / elapsed if elapsed > 0 else 0.0
        shown = f"{rate:.2f}" if rate < 10 else f"{rate:,.0f}"  # 0.69 steps/s, not "1"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


class LoggingProgress(Progress):
    """A rich `Progress` that, off a terminal, prints its columns as a line now and then."""

    def __init__(self, *columns: ProgressColumn, log_every_s: float, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self.log_every_s = log_every_s
        self._last_line = time.monotonic()
        # Off a terminal the live display stays off: it would only print its table at the end,
        # wrapped at 80 columns.
        self._plain = not self.disable and not self.console.is_terminal
        self._running = False

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._maybe_print_line(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe_print_line(task_id)

    def start(self) -> None:
        if not self._plain:
            super().start()
        self._running = True

    def stop(self) -> None:
        if not self._plain:
            super().stop()
        elif self._running:
            for task in self.tasks:
                self._print_line(task)
        self._running = False

    def _maybe_print_line(self, task_id: TaskID) -> None:
        now = time.monotonic()
        if self._plain and now - self._last_line >= self.log_every_s:
            self._last_line = now
            self._print_line(self._tasks[task_id])

    def _print_line(self, task: Task) -> None:
        parts = [column(task) for column in self.columns if not isinstance(column, BarColumn)]
        line = Text(" ").join(p if isinstance(p, Text) else Text(str(p)) for p in parts)
        self.console.print(line, soft_wrap=True, highlight=False)


def _bar(counts: list[ProgressColumn], disable: bool, log_every_s: float) -> Progress:
    """Description, bar, then `counts` (done/total and its rate), tokens/s, elapsed and ETA."""
    return LoggingProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        *counts,
        RateColumn("tok", field="tokens"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=disable,
        log_every_s=log_every_s,
    )


def progress_bar(
    *, unit: str = "rows", disable: bool = False, log_every_s: float = 30.0
) -> Progress:
    """Call `progress.update(task, advance=n, tokens=running_token_total)` as work is done;
    `unit` names what `n` counts (rows, steps)."""
    return _bar([MofNCompleteColumn(), RateColumn(unit)], disable, log_every_s)


def bytes_progress_bar(*, disable: bool = False, log_every_s: float = 30.0) -> Progress:
    """For jobs measured in input bytes: `progress.update(task, completed=bytes, tokens=n)`."""
    return _bar([DownloadColumn(), TransferSpeedColumn()], disable, log_every_s)
