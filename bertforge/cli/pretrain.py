"""`pretrain`, `distill`, `export run` and `plot`: pretraining jobs and what comes out of them.
Each command calls `bertforge.api` with its options."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bertforge import api
from bertforge.cli.common import NPROC, relaunch_under_torchrun
from bertforge.pretraining.init import describe
from bertforge.training.loggers import REPORT_TO
from bertforge.training.plots import plot_run

DATA = typer.Option(..., "--data", help="Directory written by `build-data`.")
OUTPUT = typer.Option(..., "--output", "-o", help="Run directory.")
CONFIG = typer.Option(
    None, "--config", help="Recipe: a packaged name (bert-mini, roberta-base, ...) or a TOML path."
)
MAX_STEPS = typer.Option(None, "--max-steps")
BATCH_SIZE = typer.Option(None, "--batch-size", help="Global batch size.")
LR = typer.Option(None, "--lr", help="Peak learning rate.")
WARMUP = typer.Option(None, "--warmup-steps")
SEED = typer.Option(None, "--seed")
DROPOUT = typer.Option(None, "--dropout", help="Every dropout probability.")
SAVE_EVERY = typer.Option(None, "--save-every")
RESUME = typer.Option(False, "--resume", help="Continue from the newest checkpoint.")
ALLOW_CHANGES = typer.Option(
    False,
    "--allow-changes",
    help="With --resume: continue even with settings that differ from the checkpoint's run.",
)
STOP_AT = typer.Option(
    None, "--stop-at", help="Stop at this step with a checkpoint (the schedule is unchanged)."
)
SETS = typer.Option([], "--set", help="key=value, e.g. train.optimizer=lamb")
DEVICE = typer.Option("cpu", "--device")
REPORT = typer.Option(
    [], "--report-to", help=f"Also log to: {', '.join(REPORT_TO)} (metrics.jsonl always)."
)


# The options `pretrain` and `distill` share, declared once (`shared_options`).
SHARED: dict[str, tuple[Any, Any]] = {
    "max_steps": (int | None, MAX_STEPS),
    "batch_size": (int | None, BATCH_SIZE),
    "lr": (float | None, LR),
    "warmup_steps": (int | None, WARMUP),
    "seed": (int | None, SEED),
    "save_every": (int | None, SAVE_EVERY),
    "resume": (bool, RESUME),
    "allow_changes": (bool, ALLOW_CHANGES),
    "stop_at": (int | None, STOP_AT),
    "overrides": (list[str], SETS),
    "device": (str, DEVICE),
    "report_to": (list[str], REPORT),
    "nproc": (int, NPROC),
}


def shared_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the shared options (after its own); it receives them as keywords.

    typer reads a command's options from its signature, so the wrapper shows typer the
    command's own parameters plus the shared ones, then runs the command's torchrun relaunch
    and hands the rest on."""
    own = [
        p for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]  # fmt: skip
    keyword = inspect.Parameter.KEYWORD_ONLY
    shared = [
        inspect.Parameter(name, keyword, default=option, annotation=kind)
        for name, (kind, option) in SHARED.items()
    ]

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        relaunch_under_torchrun(values.pop("nproc"))
        result = command(**values)
        if os.environ.get("RANK", "0") != "0":  # one line, not one per torchrun rank
            return
        if result.started is not None:
            typer.echo(f"started from a checkpoint: {describe(result.started)}")
        if result.model is None:
            typer.echo(f"stopped at step {result.step}; continue with --resume")
        else:
            typer.echo(f"exported to {result.model}; loss curve: {result.plot}")

    wrapper.__signature__ = inspect.Signature(own + shared)  # type: ignore[attr-defined]
    return wrapper


@shared_options
def pretrain(
    data: Path = DATA,
    output: Path = OUTPUT,
    config: str | None = CONFIG,
    dropout: float | None = DROPOUT,
    init: Path | None = typer.Option(
        None,
        "--init",
        help="Continue pretraining this HF checkpoint (family, config, tokenizer and heads "
        "from it; recipe continue-mlm unless --config). Build the data with its tokenizer.",
    ),
    init_generator: Path | None = typer.Option(
        None,
        "--init-generator",
        help="ELECTRA, DeBERTa-v3: the generator beside the --init discriminator.",
    ),
    **options: Any,
) -> api.PretrainResult:
    """Pretrain on built shards with a recipe's objectives (MLM, NSP/SOP, RTD, SBO, ...),
    from random weights or from a checkpoint (--init); exports to RUN_DIR/hf at the end."""
    return api.pretrain(
        data, output, config, dropout=dropout, init=init, init_generator=init_generator, **options
    )


@shared_options
def distill(
    teacher: Path = typer.Option(..., "--teacher", help="HF directory with an MLM head."),
    data: Path = DATA,
    output: Path = OUTPUT,
    config: str = typer.Option(
        "distilbert-base", "--config", help="Recipe: a packaged name or a TOML path."
    ),
    temperature: float | None = typer.Option(None, "--temperature"),
    **options: Any,
) -> api.PretrainResult:
    """Distil a teacher into a student of every other layer (DistilBERT): soft-target KL
    (T = 2) x 5 + MLM x 2 + hidden-state cosine x 1; exports the student to RUN_DIR/hf."""
    return api.distill(teacher, data, output, config, temperature=temperature, **options)


def export(
    run_dir: Path = typer.Argument(..., help="A pretraining run directory."),
    output: Path = typer.Option(..., "--output", "-o", help="HF directory to write."),
) -> None:
    """Export the newest checkpoint of a run as the family's HF pretraining class (ELECTRA:
    discriminator/ and generator/ directories)."""
    typer.echo(f"exported to {api.export(run_dir, output)}")


def plot(run_dir: Path = typer.Argument(..., help="A pretraining run directory.")) -> None:
    """(Re)draw RUN_DIR/loss.png from RUN_DIR/metrics.jsonl."""
    typer.echo(str(plot_run(run_dir)))
