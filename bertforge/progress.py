"""Progress bars for long jobs: rows/s, tokens/s and ETA on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
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
        return Text(f"{rate:,.0f} {self.unit}/s", style="progress.data.speed")


def progress_bar(*, disable: bool = False) -> Progress:
    """Call `progress.update(task, advance=rows, tokens=running_token_total)` as work is done."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn("rows"),
        RateColumn("tok", field="tokens"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=disable,
    )


def bytes_progress_bar(*, disable: bool = False) -> Progress:
    """For jobs measured in input bytes: `progress.update(task, completed=bytes, tokens=n)`."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        RateColumn("tok", field="tokens"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=disable,
    )
