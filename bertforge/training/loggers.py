"""Where a run's records go: `metrics.jsonl` always (one JSON object per line, flushed per
line, so a crash loses nothing that was logged), and TensorBoard event files under
`RUN_DIR/tensorboard/` with `report_to=["tensorboard"]` (`pip install 'bertforge[tensorboard]'`).

A record is a flat dict with `step` and `split` ("train", "eval", "dev", ...); TensorBoard gets
each numeric field as the scalar `{split}/{field}` at that step. On resume, records past the
resumed step are dropped from both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertforge.atomic import atomic_path
from bertforge.errors import ConfigError, DataError

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
REPORT_TO = ("tensorboard",)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        raise DataError(f"'{run_dir}' has no {METRICS_FILE}; is it a bertforge run directory?")
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write
    return records


class MetricsFile:
    """Appends records to `RUN_DIR/metrics.jsonl`; a fresh run starts it empty."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = run_dir / METRICS_FILE
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= resume_step]
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        elif resume_step is None:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoard:
    """Scalars for TensorBoard, as `transformers.Trainer(report_to="tensorboard")` writes."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "--report-to tensorboard needs the tensorboard package: "
                "pip install 'bertforge[tensorboard]'"
            ) from None
        # purge_step drops what an interrupted run logged after the step it resumes from.
        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge)

    def write(self, record: dict[str, Any]) -> None:
        step, split = record.get("step", 0), record.get("split", "train")
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(f"{split}/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def check_report_to(report_to: Sequence[str]) -> tuple[str, ...]:
    """The `--report-to` values, each one a sink this module has."""
    unknown = sorted(set(report_to) - set(REPORT_TO))
    if unknown:
        raise ConfigError(f"--report-to {', '.join(unknown)}: choose from {', '.join(REPORT_TO)}")
    return tuple(report_to)


class RunLog:
    """The run's record sinks as one: `write` goes to each."""

    def __init__(
        self, run_dir: Path, report_to: Sequence[str] = (), resume_step: int | None = None
    ) -> None:
        check_report_to(report_to)
        self.sinks: list[MetricsFile | TensorBoard] = [MetricsFile(run_dir, resume_step)]
        if "tensorboard" in report_to:
            self.sinks.append(TensorBoard(run_dir, resume_step))

    def write(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.write(record)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
