"""Plots of a run's `metrics.jsonl`: `loss.png` (pretraining: every objective's losses and
accuracies) and `dev_metric.png` (fine-tuning: the dev metric beside the training loss)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bertforge.atomic import atomic_path
from bertforge.errors import DataError
from bertforge.training.loggers import read_metrics

PLOT_FILE = "loss.png"
DEV_PLOT_FILE = "dev_metric.png"


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
    return _save(fig, run_dir / PLOT_FILE)


# Metric names the plot draws: losses, and ratios in [0, 1] (the objectives' own names).
LOSS = ("loss",)
RATIOS = ("acc", "precision", "recall", "agree")
UNIGRAM = "mlm_unigram_acc"


def _keys(rows: list[dict[str, Any]], suffixes: tuple[str, ...]) -> list[str]:
    """Numeric keys of `rows` ending in one of `suffixes` (the total loss first), in first-seen
    order (a record's `precision` names its number format, not a ratio)."""
    keys = dict.fromkeys(
        k
        for r in rows
        for k, v in r.items()
        if k.rsplit("_", 1)[-1] in suffixes and isinstance(v, int | float)
    )
    keys.pop(UNIGRAM, None)
    return list(keys)


def plot_dev_metric(run_dir: Path, metric: str) -> Path:
    """Write `RUN_DIR/dev_metric.png`: the dev metric (left) and training loss (right) by step."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers/CI
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    dev = [r for r in records if r.get("split") == "dev" and metric in r]
    train = [r for r in records if r.get("split") == "train" and "loss" in r]
    if not dev:
        raise DataError(f"'{run_dir / 'metrics.jsonl'}' has no dev {metric} records to plot")
    fig, (ax_dev, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    ax_dev.plot([r["step"] for r in dev], [r[metric] for r in dev], "o-", label=f"dev {metric}")
    ax_dev.set(xlabel="step", ylabel=metric, title=f"dev {metric}")
    ax_dev.legend()
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
        ax_loss.legend()
    ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
    return _save(fig, run_dir / DEV_PLOT_FILE)


def _save(fig: Any, out: Path) -> Path:
    """Lay out, write as PNG atomically, and free the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out
