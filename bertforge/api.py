"""The Python API of bertforge's jobs; the `bertforge` command only wraps these.

    import bertforge
    run = bertforge.pretrain("data/", "runs/mini", "bert-mini", max_steps=2000)
    ft = bertforge.finetune("sst2", run.model, "glue/SST-2", "runs/sst2")
    bertforge.predict(ft.run_dir, ["a gripping film", "dull"]).records

Each job takes the options of its command (same names, same defaults) and returns a result
object with its metrics and the paths it wrote. A run stopped by SIGTERM/SIGINT raises
`TrainingStopped` after writing a checkpoint that `resume=True` continues from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertforge.pretraining import job as pretraining
from bertforge.pretraining.recipe import DISTILBERT_LOSS, Recipe, load_recipe
from bertforge.training.loggers import METRICS_FILE
from bertforge.training.plots import PLOT_FILE

RecipeSource = str | Path | Recipe | None


@dataclass(frozen=True)
class PretrainResult:
    """What a pretraining or distillation run wrote."""

    run_dir: Path
    model: Path | None  # the exported HF directory; None when the run stopped at `stop_at`
    step: int
    metrics: dict[str, Any]  # the last held-out evaluation ({} without held-out data)

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / METRICS_FILE

    @property
    def plot(self) -> Path:
        return self.run_dir / PLOT_FILE


def _sets(flags: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    return [f"{k}={v}" for k, v in flags.items() if v is not None] + list(overrides)


def _recipe(config: RecipeSource, output: Path, resume: bool, sets: list[str]) -> Recipe:
    # A resumed run without a recipe of its own continues with the one it recorded.
    if resume and config is None and (output / pretraining.RECIPE_FILE).exists():
        config = output / pretraining.RECIPE_FILE
    return load_recipe(config, sets)


def _train(
    recipe: Recipe,
    data: str | Path,
    output: Path,
    resume: bool,
    allow_changes: bool,
    stop_at: int | None,
    device: str,
    report_to: Sequence[str],
) -> PretrainResult:
    outcome = pretraining.pretrain(
        recipe,
        Path(data),
        output,
        resume=resume,
        allow_changes=allow_changes,
        device=device,
        stop_at=stop_at,
        report_to=report_to,
    )
    return PretrainResult(output, outcome.hf_dir, outcome.step, outcome.eval or {})


def pretrain(
    data: str | Path,
    output: str | Path,
    config: RecipeSource = None,
    *,
    max_steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    warmup_steps: int | None = None,
    seed: int | None = None,
    dropout: float | None = None,
    save_every: int | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    allow_changes: bool = False,
    stop_at: int | None = None,
    device: str = "cpu",
    report_to: Sequence[str] = (),
) -> PretrainResult:
    """Pretrain on shards from `build-data` with a recipe (a packaged name such as
    "bert-mini", a TOML path, or a `Recipe`; default: BERT-mini's defaults) and its
    objectives; exports to OUTPUT/hf. `overrides` are `--set` items ("train.lr=5e-4")."""
    output = Path(output)
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
    recipe = _recipe(config, output, resume, _sets(flags, overrides))
    return _train(recipe, data, output, resume, allow_changes, stop_at, device, report_to)


def distill(
    teacher: str | Path,
    data: str | Path,
    output: str | Path,
    config: RecipeSource = "distilbert-base",
    *,
    max_steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    warmup_steps: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    save_every: int | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    allow_changes: bool = False,
    stop_at: int | None = None,
    device: str = "cpu",
    report_to: Sequence[str] = (),
) -> PretrainResult:
    """Distil a teacher (an HF directory with an MLM head) into a student of every other
    layer (DistilBERT): soft-target KL x 5 + MLM x 2 + hidden-state cosine x 1, unless the
    recipe or `overrides` name the objectives; exports the student to OUTPUT/hf."""
    output = Path(output)
    flags = {
        "distill.teacher": Path(teacher).resolve(),
        "train.max_steps": max_steps,
        "train.batch_size": batch_size,
        "train.lr": lr,
        "train.warmup_steps": warmup_steps,
        "distill.temperature": temperature,
        "train.seed": seed,
        "train.save_every": save_every,
    }
    recipe = _recipe(config, output, resume, _sets(flags, overrides))
    if not recipe.objectives:  # the published loss unless the recipe names its own
        recipe = dataclasses.replace(recipe, objectives=dict(DISTILBERT_LOSS))
    return _train(recipe, data, output, resume, allow_changes, stop_at, device, report_to)


def export(run_dir: str | Path, output: str | Path) -> Path:
    """Write the newest checkpoint of a pretraining run as the family's HF pretraining class
    (ELECTRA: `discriminator/` and `generator/` below OUTPUT)."""
    return pretraining.export(Path(run_dir), Path(output))
