"""`pretrain`, `export` and `plot`: the pretraining job and what comes out of it."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from bertforge.cli.common import NPROC, relaunch_under_torchrun
from bertforge.training.loop import export as export_run
from bertforge.training.loop import pretrain as run_pretraining
from bertforge.training.metrics import plot_run
from bertforge.training.recipe import load_recipe

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
SETS = typer.Option([], "--set", help="key=value, e.g. train.optimizer=lamb")
DEVICE = typer.Option("cpu", "--device")


def pretrain(
    data: Path = DATA,
    output: Path = OUTPUT,
    config: str | None = CONFIG,
    max_steps: int | None = MAX_STEPS,
    batch_size: int | None = BATCH_SIZE,
    lr: float | None = LR,
    warmup_steps: int | None = WARMUP,
    seed: int | None = SEED,
    dropout: float | None = DROPOUT,
    save_every: int | None = SAVE_EVERY,
    resume: bool = RESUME,
    overrides: list[str] = SETS,
    device: str = DEVICE,
    nproc: int = NPROC,
) -> None:
    """Pretrain on built shards with a recipe's objectives (MLM, NSP/SOP, RTD, SBO, ...);
    exports to RUN_DIR/hf at the end."""
    relaunch_under_torchrun(nproc)
    flags = {
        "train.max_steps": max_steps,
        "train.batch_size": batch_size,
        "train.lr": lr,
        "train.warmup_steps": warmup_steps,
        "train.seed": seed,
        "model.hidden_dropout_prob": dropout,
        "model.attention_probs_dropout_prob": dropout,
        "train.save_every": save_every,
    }
    sets = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(overrides)
    _run(data, output, config, sets, resume, device)


def distill(
    teacher: Path = typer.Option(..., "--teacher", help="HF directory with an MLM head."),
    data: Path = DATA,
    output: Path = OUTPUT,
    config: str | None = typer.Option(
        None, "--config", help="Recipe name or TOML path (default: distilbert-base's settings)."
    ),
    max_steps: int | None = MAX_STEPS,
    batch_size: int | None = BATCH_SIZE,
    lr: float | None = LR,
    warmup_steps: int | None = WARMUP,
    temperature: float | None = typer.Option(None, "--temperature"),
    seed: int | None = SEED,
    save_every: int | None = SAVE_EVERY,
    resume: bool = RESUME,
    overrides: list[str] = SETS,
    device: str = DEVICE,
    nproc: int = NPROC,
) -> None:
    """Distil a teacher into a student of every other layer (DistilBERT): soft-target KL
    (T = 2) x 5 + MLM x 2 + hidden-state cosine x 1; exports the student to RUN_DIR/hf."""
    relaunch_under_torchrun(nproc)
    flags = {
        "distill.teacher": teacher.resolve(),
        "train.max_steps": max_steps,
        "train.batch_size": batch_size,
        "train.lr": lr,
        "train.warmup_steps": warmup_steps,
        "distill.temperature": temperature,
        "train.seed": seed,
        "train.save_every": save_every,
    }
    sets = [f"{k}={v}" for k, v in flags.items() if v is not None]
    # The published loss unless the recipe or --set names the objectives itself.
    named = config is not None and load_recipe(config).objectives
    if not named and not any(o.startswith("objectives.") for o in overrides):
        sets += [f"objectives.{k}={w}" for k, w in DISTILBERT_LOSS.items()]
    _run(data, output, config, [*sets, *overrides], resume, device)


# DistilBERT's loss weights (Sanh et al., 2019): soft targets, MLM, hidden-state cosine.
DISTILBERT_LOSS = {"distill_ce": 5.0, "mlm": 2.0, "distill_cos": 1.0}


def _run(
    data: Path,
    output: Path,
    config: str | Path | None,
    sets: list[str],
    resume: bool,
    device: str,
) -> None:
    if resume and config is None and (output / "recipe.toml").exists():
        config = output / "recipe.toml"
    recipe = load_recipe(config, sets)  # a micro-batch above --batch-size shrinks to it
    exported = run_pretraining(recipe, data, output, resume=resume, device=device)
    if os.environ.get("RANK", "0") == "0":  # one line, not one per torchrun rank
        typer.echo(f"exported to {exported}; loss curve: {output / 'loss.png'}")


def export(
    run_dir: Path = typer.Argument(..., help="A pretraining run directory."),
    output: Path = typer.Option(..., "--output", "-o", help="HF directory to write."),
) -> None:
    """Export the newest checkpoint of a run as the family's HF pretraining class (ELECTRA:
    discriminator/ and generator/ directories)."""
    typer.echo(f"exported to {export_run(run_dir, output)}")


def plot(run_dir: Path = typer.Argument(..., help="A pretraining run directory.")) -> None:
    """(Re)draw RUN_DIR/loss.png from RUN_DIR/metrics.jsonl."""
    typer.echo(str(plot_run(run_dir)))
