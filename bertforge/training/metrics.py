"""Run metrics: one JSON object per line in `metrics.jsonl`, and the loss-curve PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bertforge.atomic import atomic_path
from bertforge.errors import DataError


class MetricsLog:
    """Appends records to `RUN_DIR/metrics.jsonl`, flushed per line so a crash loses nothing
    that was logged. On resume, records past the resumed step are dropped first."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = run_dir / "metrics.jsonl"
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


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        raise DataError(f"'{run_dir}' has no metrics.jsonl; is it a pretraining run directory?")
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write
    return records


def plot_run(run_dir: Path) -> Path:
    """Write `RUN_DIR/loss.png`: training losses (left) and MLM/NSP accuracy (right)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers/CI
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    train = [r for r in records if r.get("split", "train") == "train" and "loss" in r]
    evals = [r for r in records if r.get("split") == "eval"]
    if not train:
        raise DataError(f"'{run_dir / 'metrics.jsonl'}' has no training records to plot yet")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in train]
    for key, label in (("loss", "total"), ("mlm_loss", "MLM"), ("nsp_loss", "NSP")):
        if any(key in r for r in train):
            ax_loss.plot(steps, [r.get(key) for r in train], label=f"train {label}")
    if evals:
        ax_loss.plot(
            [r["step"] for r in evals], [r["mlm_loss"] for r in evals], "o-", label="eval MLM"
        )
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_loss.legend()
    for key, label in (("mlm_acc", "MLM acc"), ("nsp_acc", "NSP acc")):
        if any(key in r for r in train):
            ax_acc.plot(steps, [r.get(key) for r in train], label=f"train {label}")
        if any(key in r for r in evals):
            ax_acc.plot(
                [r["step"] for r in evals], [r.get(key) for r in evals], "o-", label=f"eval {label}"
            )
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    ax_acc.legend()
    fig.tight_layout()
    out = run_dir / "loss.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out
