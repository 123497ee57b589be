"""What a fine-tuning run shows at the end: the dev-metric curve PNG and a results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bertforge.atomic import atomic_path
from bertforge.errors import DataError
from bertforge.training.finetune.tasks import TaskInfo
from bertforge.training.loggers import read_metrics

PLOT_FILE = "dev_metric.png"


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
    fig.tight_layout()
    out = run_dir / PLOT_FILE
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out


def report_table(info: TaskInfo, metrics: dict[str, float], summary: dict[str, Any]) -> None:
    """Print the best checkpoint's dev metrics and trainable-parameter counts on stderr."""
    table = Table(title=f"{info.source} ({info.kind}, {info.strategy}): best dev checkpoint")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    for name, value in summary.items():
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    Console(stderr=True).print(table)
