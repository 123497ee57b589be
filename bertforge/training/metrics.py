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
    """Write `RUN_DIR/loss.png`: every objective's training (line) and eval (dots) losses on
    the left, its accuracies and ratios (precision, recall, agreement) on the right, with the
    unigram baseline of MLM accuracy when the run measured it."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers/CI
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    train = [r for r in records if r.get("split", "train") == "train" and "loss" in r]
    evals = [r for r in records if r.get("split") == "eval"]
    if not train:
        raise DataError(f"'{run_dir / 'metrics.jsonl'}' has no training records to plot yet")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for split, rows, style in (("train", train, "-"), ("eval", evals, "o-")):
        steps = [r["step"] for r in rows]
        for key in _keys(rows, LOSS):
            ax_loss.plot(steps, [r.get(key) for r in rows], style, label=f"{split} {key}")
        for key in _keys(rows, RATIOS):
            ax_acc.plot(steps, [r.get(key) for r in rows], style, label=f"{split} {key}")
    baseline = next((r[UNIGRAM] for r in evals if UNIGRAM in r), None)
    if baseline is not None:
        ax_acc.axhline(baseline, color="grey", linestyle=":", label="MLM unigram baseline")
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_loss.legend(fontsize="small")
    ax_acc.set(xlabel="step", ylabel="accuracy / ratio", title="accuracy", ylim=(0, 1))
    ax_acc.legend(fontsize="small")
    fig.tight_layout()
    out = run_dir / "loss.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out


# Metric names the plot draws: losses, and ratios in [0, 1] (the objectives' own names).
LOSS = ("loss",)
RATIOS = ("acc", "precision", "recall", "agree")
UNIGRAM = "mlm_unigram_acc"


def _keys(rows: list[dict[str, Any]], suffixes: tuple[str, ...]) -> list[str]:
    """Keys of `rows` ending in one of `suffixes` (the total loss first), in first-seen order."""
    keys = dict.fromkeys(k for r in rows for k in r if k.rsplit("_", 1)[-1] in suffixes)
    keys.pop(UNIGRAM, None)
    return list(keys)
