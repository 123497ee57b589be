"""Progress bars off a terminal: plain lines with the same columns, not silence."""

from __future__ import annotations

import pytest
from rich.progress import Progress

from bertforge.progress import RateColumn, bytes_progress_bar, progress_bar


def test_non_terminal_stderr_gets_periodic_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar(log_every_s=0.0) as bar:
        task = bar.add_task("fine-tuning", total=100, tokens=0)
        for done in range(1, 4):
            bar.update(task, advance=10, tokens=500 * done)
    err = capsys.readouterr().err.splitlines()
    assert all(line.strip() for line in err)  # no stray blank lines in a log
    lines = [line for line in err if "rows/s" in line]
    assert len(lines) == 4  # one per update at interval 0, then the final line
    assert "fine-tuning" in lines[0] and "10/100" in lines[0]
    assert "tok/s" in lines[0] and "ETA" in lines[0]
    assert "\x1b[" not in lines[0]  # a log file gets no terminal escape codes


def test_lines_wait_for_the_interval(capsys: pytest.CaptureFixture[str]) -> None:
    with bytes_progress_bar(log_every_s=3600.0) as bar:
        task = bar.add_task("reading", total=1000, tokens=0)
        for _ in range(5):
            bar.update(task, advance=100, tokens=10)
    assert capsys.readouterr().err.count("reading") == 1  # only the final line


def test_disabled_bar_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar(disable=True, log_every_s=0.0) as bar:
        task = bar.add_task("quiet", total=10, tokens=0)
        bar.update(task, advance=10)
    assert "quiet" not in capsys.readouterr().err


def test_rates_keep_decimals_below_ten() -> None:
    """Pretraining runs under one step per second: 0.69 steps/s, not "1 rows/s"."""
    now = [0.0]
    bar = Progress(RateColumn("steps"), get_time=lambda: now[0])
    task = bar.add_task("pretrain", total=100)
    now[0] = 100.0
    bar.update(task, advance=69)
    assert RateColumn("steps")(bar.tasks[0]).plain == "0.69 steps/s"
    bar.update(task, advance=2000)
    assert RateColumn("rows")(bar.tasks[0]).plain == "21 rows/s"
