"""Resolve once, then fine-tune: a task name, a checkpoint, data and options become one
`FinetunePlan` (the task's `TaskSetup`, saved as task.json, and the loop's `FinetuneConfig`)
before anything trains.

Every `finetune` option is declared once, here (`COMMON_OPTIONS`), on its task or on its
strategy; the Python API takes them as keywords and the command line as flags.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertforge.errors import ConfigError
from bertforge.finetuning.strategies import STRATEGIES, Strategy, get_strategy
from bertforge.interop.hf import load_config
from bertforge.tasks import REQUIRED, Option, Task, TaskSetup, find_file, get_task
from bertforge.training.loggers import REPORT_TO, check_report_to
from bertforge.training.runtime import PRECISIONS

logger = logging.getLogger(__name__)

COMMON_OPTIONS = (
    Option("train_file", None, "Train file: a name in --data, or a path.", Path,
           ("--train-file", "--train")),
    Option("dev_file", None, "Dev file: a name in --data, or a path.", Path,
           ("--dev-file", "--dev")),
    Option("strategy", "full", "Which parameters train.", choices=tuple(STRATEGIES)),
    Option("max_length", None, "Tokens per input; default: the task's (128; SQuAD 384).", int),
    Option("epochs", None, "Default: the task's (3; SQuAD 2).", int),
    Option("batch_size", 32, "Global batch size.", int),
    Option("eval_batch_size", 64, "Batch size of dev evaluation.", int),
    Option("lr", None, "Peak LR; default by strategy: full/prompt 3e-5, frozen/adapter 1e-3, "
           "lora 5e-4.", float),
    Option("max_train_examples", None, "Train on the first N only.", int),
    Option("max_eval_examples", None, "Score the first N dev examples.", int),
    Option("seed", 42, "Seed of the head's initialisation and the batch order.", int),
    Option("group_by_length", False, "Batch similar lengths: less padding.", bool),
    Option("precision", "fp32", "fp32 or bf16 (autocast).", choices=PRECISIONS),
    Option("eval_every", None, "Also evaluate dev every N steps (always at epoch ends).", int),
    Option("save_every", None, "Checkpoint every N steps (default: only when stopped).", int),
    Option("stop_at", None, "Stop at this step with a checkpoint (the schedule is unchanged).",
           int),
    Option("resume", False, "Continue from the newest checkpoint of --output.", bool),
    Option("allow_changes", False, "With --resume: continue even with settings that differ "
           "from the checkpoint's run.", bool),
    Option("report_to", (), f"Also log to: {', '.join(REPORT_TO)} (metrics.jsonl always).", list),
    Option("device", "cpu", "cpu, cuda or cuda:N."),
)  # fmt: skip


@dataclass(frozen=True)
class FinetuneConfig:
    """The loop's settings; defaults follow the BERT paper's fine-tuning recipe."""

    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 64
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 42
    group_by_length: bool = False
    precision: str = "fp32"
    eval_every: int | None = None  # steps; dev is always evaluated at each epoch's end too
    save_every: int | None = None  # steps; None: a checkpoint only when the run is stopped
    stop_at: int | None = None
    log_every: int = 10
    max_bad_steps: int = 5
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    device: str = "cpu"
    report_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        check_report_to(self.report_to)


@dataclass(frozen=True)
class FinetunePlan:
    task: Task
    strategy: Strategy
    setup: TaskSetup
    config: FinetuneConfig
    model_dir: Path

    def settings(self) -> dict[str, Any]:
        """What the run is, as JSON: compared on resume."""
        # Where it runs and where it stops this time are not what the run is.
        config = {
            k: v
            for k, v in dataclasses.asdict(self.config).items()
            if k not in ("stop_at", "device")
        }
        return {
            "task": dataclasses.asdict(self.setup),
            "train": config,
            "model": str(self.model_dir),
        }


def task_options(task: Task) -> tuple[Option, ...]:
    """Every option `finetune` takes for `task`: its own, the common ones, and those of the
    strategies it can use."""
    strategy = tuple(o for s in STRATEGIES.values() if s.applies_to(task) for o in s.options)
    return (*task.options, *COMMON_OPTIONS, *strategy)


def resolve_options(task: Task, given: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's option values over the defaults, checked: no unknown names, every
    required one given, every choice valid."""
    options = {o.name: o for o in task_options(task)}
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise ConfigError(
            f"{task.name} has no option {', '.join(map(repr, unknown))}; its options: "
            f"{', '.join(options)}"
        )
    values = {}
    for name, option in options.items():
        value = given.get(name, option.default)
        if option.required and value in (None, REQUIRED):
            raise ConfigError(f"{task.name} needs {option.flag} ({option.help})")
        values[name] = option.check(value) if value is not None else None
    return values


def plan_finetuning(
    task_name: str, model_dir: Path, data: Path | None, given: Mapping[str, Any]
) -> FinetunePlan:
    """Check everything that can be checked before training and resolve the run."""
    task = get_task(task_name)
    values = resolve_options(task, given)
    strategy = get_strategy(values["strategy"])
    own = {o.name: values[o.name] for o in task.options}
    candidates = task.default_files(own)
    hint = task.missing_hint()
    files = {
        split: find_file(data, values[f"{split}_file"], candidates[split], split, hint)
        for split in ("train", "dev")
    }
    setup = task.setup(files, own, values["max_length"])
    task.check_settings(setup, values)
    positions = load_config(model_dir).max_length
    if setup.max_length > positions:
        logger.warning(
            "max_length %d is more than the model's %d positions; using %d",
            setup.max_length, positions, positions,
        )  # fmt: skip
        setup.max_length = positions
    setup.strategy = strategy.name
    setup.strategy_options = strategy.resolve(task, setup, values)
    setup.precision = values["precision"]
    config = FinetuneConfig(
        epochs=values["epochs"] or task.epochs,
        batch_size=values["batch_size"],
        eval_batch_size=values["eval_batch_size"],
        lr=values["lr"] or strategy.lr,
        seed=values["seed"],
        group_by_length=values["group_by_length"],
        precision=values["precision"],
        eval_every=values["eval_every"],
        save_every=values["save_every"],
        stop_at=values["stop_at"],
        max_train_examples=values["max_train_examples"],
        max_eval_examples=values["max_eval_examples"],
        device=values["device"],
        report_to=tuple(values["report_to"] or ()),
    )
    return FinetunePlan(task, strategy, setup, config, Path(model_dir).resolve())
