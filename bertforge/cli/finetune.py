"""`finetune TASK`, `evaluate` and `predict`, built from the task registry: one command per
task (the GLUE tasks share `glue --task NAME`), its flags from the options each task, the
fine-tuning loop and the strategies declare. Each calls `bertforge.api`."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bertforge import api
from bertforge.cli.common import NPROC, relaunch_under_torchrun
from bertforge.errors import ConfigError
from bertforge.finetuning.plan import task_options
from bertforge.tasks import Option, Task, all_tasks
from bertforge.tasks.registry import task_key
from bertforge.training.runtime import PRECISIONS

app = typer.Typer(no_args_is_help=True, help="Fine-tune a checkpoint on a task.")

KEYWORD = inspect.Parameter.KEYWORD_ONLY
MODEL = typer.Option(..., "--model", help="Checkpoint directory (HF layout) + tokenizer.")
OUTPUT = typer.Option(..., "--output", "-o", help="Run directory to write.")
DATA = typer.Option(None, "--data", help="The task's data folder.")
EVAL_BATCH = typer.Option(64, "--batch-size")
DEVICE = typer.Option("cpu", "--device")
PRECISION = typer.Option(
    None, "--precision", help=f"{' or '.join(PRECISIONS)}; default: the run's own."
)


def _parameter(option: Option) -> inspect.Parameter:
    """The typer parameter of one option (types as typer reads them)."""
    kinds: dict[type, Any] = {str: str | None, int: int | None, float: float | None,
                              Path: Path | None, bool: bool, list: list[str]}  # fmt: skip
    help_text = option.help + (f" One of {', '.join(option.choices)}." if option.choices else "")
    if option.required:
        default: Any = typer.Option(..., option.flag, *option.flags[1:], help=help_text)
        kind: Any = str
    else:
        value = list(option.default) if option.type is list else option.default
        flags = option.flags or (option.flag,)
        default = typer.Option(value, *flags, help=help_text)
        kind = kinds[option.type]
    return inspect.Parameter(option.name, KEYWORD, default=default, annotation=kind)


def _command(name: str, tasks: list[Task]) -> Callable[..., None]:
    """The `finetune NAME` command for `tasks` (several: chosen by --task)."""
    options = list({o.name: o for t in tasks for o in task_options(t)}.values())
    params = [
        inspect.Parameter("model", KEYWORD, default=MODEL, annotation=Path),
        inspect.Parameter("output", KEYWORD, default=OUTPUT, annotation=Path),
        inspect.Parameter("data", KEYWORD, default=DATA, annotation=Path | None),
    ]
    if len(tasks) > 1:
        names = ", ".join(t.name for t in tasks)
        choice = typer.Option(..., "--task", help=f"One of {names}.")
        params.insert(0, inspect.Parameter("task", KEYWORD, default=choice, annotation=str))
    params += [_parameter(o) for o in options]
    params.append(inspect.Parameter("nproc", KEYWORD, default=NPROC, annotation=int))

    def command(**values: Any) -> None:
        relaunch_under_torchrun(values.pop("nproc"))
        task = tasks[0].name
        if len(tasks) > 1:
            task = values.pop("task")
            names = [t.name for t in tasks]
            if task_key(task) not in names:
                raise ConfigError(
                    f"unknown {name.upper()} task {task!r}; choose from {', '.join(names)}"
                )
        model, data, output = values.pop("model"), values.pop("data"), values.pop("output")
        result = api.finetune(task, model, data, output, **values)
        if result.metrics:  # rank 0 (other torchrun ranks have none)
            typer.echo(json.dumps(result.metrics))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = tasks[0].help if len(tasks) == 1 else f"Fine-tune on a {name.upper()} task."
    command.__name__ = name
    return command


def _register() -> None:
    commands: dict[str, list[Task]] = {}
    for task in all_tasks():
        commands.setdefault(task.command, []).append(task)
    for name, tasks in sorted(commands.items()):
        app.command(name)(_command(name, tasks))


_register()


def _predict_help() -> str:
    inputs = {t.command: t.predict_input for t in all_tasks()}
    lines = "\n\n".join(f"{name}: {text}." for name, text in inputs.items())
    return f"Predict with RUN_DIR/best; writes one record per input.\n\nINPUT by task:\n\n{lines}"


def evaluate(
    run_dir: Path = typer.Argument(..., help="A `bertforge finetune` run directory."),
    data: Path | None = typer.Option(
        None, "--data", help="A dev file, or the task's folder; default: the run's own."
    ),
    max_eval_examples: int | None = typer.Option(
        None, "--max-eval-examples", help="Score the first N dev examples."
    ),
    batch_size: int = EVAL_BATCH,
    precision: str | None = PRECISION,
    device: str = DEVICE,
) -> None:
    """Score RUN_DIR/best on dev data; prints one JSON object of metrics and their precision."""
    result = api.evaluate(
        run_dir,
        data,
        precision=precision,
        max_eval_examples=max_eval_examples,
        batch_size=batch_size,
        device=device,
    )
    typer.echo(json.dumps(result.metrics))


def predict(
    run_dir: Path = typer.Argument(..., help="A `bertforge finetune` run directory."),
    input_path: Path = typer.Option(..., "--input", help="Inputs, in the task's format."),
    output: Path = typer.Option(..., "--output", "-o", help="OUT.jsonl or OUT.tsv."),
    batch_size: int = EVAL_BATCH,
    precision: str | None = PRECISION,
    device: str = DEVICE,
) -> None:
    result = api.predict(
        run_dir, input_path, output, precision=precision, batch_size=batch_size, device=device
    )
    typer.echo(f"wrote {len(result.records)} predictions to {output}")


predict.__doc__ = _predict_help()
