"""`pretrain`, `export` and `plot`: the pretraining job and what comes out of it."""

from __future__ import annotations

from pathlib import Path

import typer

from bertforge.training.loop import export as export_run
from bertforge.training.loop import pretrain as run_pretraining
from bertforge.training.metrics import plot_run
from bertforge.training.recipe import load_recipe


def pretrain(
    data: Path = typer.Option(..., "--data", help="Directory written by `build-data`."),
    output: Path = typer.Option(..., "--output", "-o", help="Run directory."),
    config: Path | None = typer.Option(None, "--config", help="TOML recipe (configs/*.toml)."),
    max_steps: int | None = typer.Option(None, "--max-steps"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Global batch size."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate."),
    warmup_steps: int | None = typer.Option(None, "--warmup-steps"),
    seed: int | None = typer.Option(None, "--seed"),
    dropout: float | None = typer.Option(None, "--dropout", help="Every dropout probability."),
    save_every: int | None = typer.Option(None, "--save-every"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint."),
    overrides: list[str] = typer.Option([], "--set", help="key=value, e.g. train.optimizer=lamb"),
    device: str = typer.Option("cpu", "--device"),
) -> None:
    """Pretrain a BERT on built shards (MLM + NSP/SOP); exports to RUN_DIR/hf at the end."""
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
    if resume and config is None and (output / "recipe.toml").exists():
        config = output / "recipe.toml"
    recipe = load_recipe(config, sets)
    if batch_size is not None and recipe.train.micro_batch_size > batch_size:
        recipe = load_recipe(config, [*sets, f"train.micro_batch_size={batch_size}"])
    exported = run_pretraining(recipe, data, output, resume=resume, device=device)
    typer.echo(f"exported to {exported}; loss curve: {output / 'loss.png'}")


def export(
    run_dir: Path = typer.Argument(..., help="A pretraining run directory."),
    output: Path = typer.Option(..., "--output", "-o", help="HF directory to write."),
) -> None:
    """Export the newest checkpoint of a run as an HF BertForPreTraining directory."""
    typer.echo(f"exported to {export_run(run_dir, output)}")


def plot(run_dir: Path = typer.Argument(..., help="A pretraining run directory.")) -> None:
    """(Re)draw RUN_DIR/loss.png from RUN_DIR/metrics.jsonl."""
    typer.echo(str(plot_run(run_dir)))
