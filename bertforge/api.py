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
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertforge.errors import ConfigError
from bertforge.finetuning import evaluate_run, plan_finetuning, predict_run
from bertforge.finetuning import job as finetuning
from bertforge.finetuning.inference import BEST_DIR
from bertforge.pretraining import extend_vocab as vocab
from bertforge.pretraining import job as pretraining
from bertforge.pretraining.extend_vocab import ExtendResult
from bertforge.pretraining.init import init_overrides
from bertforge.pretraining.recipe import DISTILBERT_LOSS, Recipe, load_recipe
from bertforge.training.loggers import METRICS_FILE
from bertforge.training.plots import PLOT_FILE

RecipeSource = str | Path | Recipe | None
CONTINUE_RECIPE = "continue-mlm"  # the recipe of `pretrain(init=...)` without one


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

    @property
    def started(self) -> dict[str, Any] | None:
        """A run from a checkpoint (`init=`): per part, where it came from, what was loaded
        and what is new, and the heads kept unchanged (RUN_DIR/init.json)."""
        path = self.run_dir / pretraining.INIT_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


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
    default_objectives: Mapping[str, float] | None = None,
    init: str | Path | None = None,
    init_generator: str | Path | None = None,
) -> PretrainResult:
    """Pretrain on shards from `build-data` with a recipe (a packaged name such as
    "bert-mini", a TOML path, or a `Recipe`; default: BERT-mini's defaults) and its
    objectives; exports to OUTPUT/hf. `overrides` are `--set` items ("train.lr=5e-4");
    `default_objectives` ({name: weight}) train when the recipe names none.

    `init`: continue pretraining an HF checkpoint (its family, config and tokenizer; the
    shards must be built with that tokenizer), by default with the "continue-mlm" recipe and
    the objectives it was trained for; `init_generator`: the replaced-token-detection
    generator (ELECTRA, DeBERTa-v3) beside a discriminator given as `init`."""
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
    given = {k: v for k, v in flags.items() if v is not None}
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in given:
            raise ConfigError(
                f"{key} is given twice: {key}={given[key]} by keyword and {item!r} in "
                "overrides; keep one"
            )
    sets = [f"{k}={v}" for k, v in given.items()] + list(overrides)
    # A resumed run without a recipe of its own continues with the one it recorded.
    if resume and config is None and (output / pretraining.RECIPE_FILE).exists():
        config = output / pretraining.RECIPE_FILE
    if init_generator is not None and init is None:
        raise ConfigError("--init-generator needs --init, the discriminator it was trained with")
    if init is not None:
        sets = init_overrides(init, init_generator) + sets
        config = CONTINUE_RECIPE if config is None else config
    recipe = load_recipe(config, sets)
    if default_objectives and not recipe.objectives:
        recipe = dataclasses.replace(recipe, objectives=dict(default_objectives))
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


def distill(
    teacher: str | Path,
    data: str | Path,
    output: str | Path,
    config: RecipeSource = "distilbert-base",
    *,
    temperature: float | None = None,
    overrides: Sequence[str] = (),
    **options: Any,
) -> PretrainResult:
    """Distil a teacher (an HF directory with an MLM head) into a student of every other
    layer (DistilBERT): soft-target KL x 5 + MLM x 2 + hidden-state cosine x 1, unless the
    recipe or `overrides` name the objectives; exports the student to OUTPUT/hf. `options`
    are those of `pretrain` (max_steps=, lr=, resume=, ...)."""
    sets = [f"distill.teacher={Path(teacher).resolve()}"]
    if temperature is not None:
        sets.append(f"distill.temperature={temperature}")
    return pretrain(
        data,
        output,
        config,
        overrides=[*sets, *overrides],
        default_objectives=DISTILBERT_LOSS,
        **options,
    )


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tuning run wrote."""

    run_dir: Path
    metrics: dict[str, Any]  # the best checkpoint's dev metrics and their `precision`
    step: int
    stopped: bool  # ended at `stop_at` (resume=True continues)

    @property
    def best(self) -> Path:
        """The best dev checkpoint: an HF directory with its tokenizer."""
        return self.run_dir / BEST_DIR

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / METRICS_FILE


@dataclass(frozen=True)
class EvaluateResult:
    run_dir: Path
    metrics: dict[str, Any]  # dev metrics and the `precision` they were computed in


@dataclass(frozen=True)
class PredictResult:
    run_dir: Path
    records: list[dict[str, Any]]  # one per input, as `predict` writes them
    output: Path | None  # the file written, if any


def finetune(
    task: str,
    model: str | Path,
    data: str | Path | None,
    output: str | Path,
    **options: Any,
) -> FinetuneResult:
    """Fine-tune MODEL (an HF checkpoint directory with its tokenizer) on TASK (`sst2`,
    `classify`, `ner`, `squad`, ...; `bertforge.tasks.task_names()`), reading DATA (the
    task's folder, or None when `train_file=` and `dev_file=` are paths), into OUTPUT.
    `options` are the command's options by name: `epochs=`, `lr=`, `strategy=`,
    `text_column=`, ...; unknown names are an error that lists the task's options."""
    resume = bool(options.get("resume", False))
    allow_changes = bool(options.get("allow_changes", False))
    plan = plan_finetuning(task, Path(model), None if data is None else Path(data), options)
    outcome = finetuning.finetune(plan, Path(output), resume=resume, allow_changes=allow_changes)
    return FinetuneResult(Path(output), outcome.metrics, outcome.step, outcome.stopped)


def evaluate(
    run: str | Path,
    data: str | Path | None = None,
    *,
    precision: str | None = None,
    max_eval_examples: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> EvaluateResult:
    """Score RUN/best on the run's dev file, or on DATA (a dev file, or the task's folder).
    `precision` (fp32 | bf16) defaults to the one the run evaluated in."""
    metrics = evaluate_run(
        Path(run),
        None if data is None else Path(data),
        precision=precision,
        max_eval_examples=max_eval_examples,
        batch_size=batch_size,
        device=device,
    )
    return EvaluateResult(Path(run), metrics)


def predict(
    run: str | Path,
    inputs: str | Path | Sequence[Any],
    output: str | Path | None = None,
    *,
    precision: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> PredictResult:
    """Predict with RUN/best: INPUTS is a file in the task's training format, or a list of
    texts / (text, text) pairs / {"question", "context"} dicts / sentences; OUTPUT (.jsonl
    or .tsv) is written when given."""
    out = None if output is None else Path(output)
    source = Path(inputs) if isinstance(inputs, str | Path) else inputs
    records = predict_run(
        Path(run), source, out, precision=precision, batch_size=batch_size, device=device
    )
    return PredictResult(Path(run), records, out)


def export(run_dir: str | Path, output: str | Path) -> Path:
    """Write the newest checkpoint of a pretraining run as the family's HF pretraining class
    (ELECTRA: `discriminator/` and `generator/` below OUTPUT)."""
    return pretraining.export(Path(run_dir), Path(output))


def extend_vocab(
    model: str | Path,
    inputs: Sequence[str | Path],
    add: int,
    output: str | Path,
    *,
    min_count: int = 2,
) -> ExtendResult:
    """Add the `add` words of `inputs` (text files or directories) that the tokenizer of
    `model` cuts into the most pieces, weighted by how often they occur, to its tokenizer and
    embeddings (each new row the mean of its old pieces'); writes an HF checkpoint to
    `output` for `pretrain(init=output)`. The result reports tokens per word before/after."""
    return vocab.extend_vocab(model, inputs, add, output, min_count)
