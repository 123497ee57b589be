"""`finetune {glue,classify,ner,squad,cmrc}`, `evaluate` and `predict`."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bertforge import tasks
from bertforge.cli.common import NPROC, relaunch_under_torchrun
from bertforge.errors import ConfigError, DataError
from bertforge.training.finetune import FinetuneConfig, finetune
from bertforge.training.finetune.predict import evaluate_run, predict_run
from bertforge.training.finetune.prompt import prompt_config
from bertforge.training.finetune.strategy import STRATEGIES, check_strategy
from bertforge.training.finetune.tasks import TaskInfo

app = typer.Typer(no_args_is_help=True, help="Fine-tune a BERT checkpoint on a task.")

# Peak learning rates: the paper's full fine-tuning range (2e-5..5e-5) for the encoder; a head
# alone, adapters and LoRA train few fresh parameters and want far larger steps.
DEFAULT_LR = {"full": 3e-5, "frozen": 1e-3, "adapter": 1e-3, "lora": 5e-4, "prompt": 3e-5}

MODEL = typer.Option(..., "--model", help="BERT checkpoint directory (HF layout) + tokenizer.")
OUTPUT = typer.Option(..., "--output", "-o", help="Run directory to write.")
MAX_EVAL = typer.Option(None, "--max-eval-examples", help="Score the first N dev examples.")
EVAL_BATCH = typer.Option(64, "--eval-batch-size")
DEVICE = typer.Option("cpu", "--device")
STRATEGY = typer.Option("full", "--strategy", help=f"One of {', '.join(STRATEGIES)}.")
MAX_LENGTH = typer.Option(None, "--max-length", help="Tokens per input; 128 (384 for SQuAD).")
TEMPLATE = typer.Option(None, "--template", help="Prompt: default '{text} It was [MASK].'")
VERBALIZER = typer.Option(None, "--verbalizer", help="Prompt: LABEL=WORD,... for every label.")

# The training-loop options of every `finetune` command, declared once (`loop_options`).
_LOOP = {
    "epochs": (int | None, typer.Option(None, "--epochs", help="Default 3 (2 for SQuAD).")),
    "batch_size": (int, typer.Option(32, "--batch-size")),
    "eval_batch_size": (int, EVAL_BATCH),
    "lr": (
        float | None,
        typer.Option(None, "--lr", help="Peak LR; default 3e-5 (frozen/adapter 1e-3, lora 5e-4)."),
    ),
    "max_train_examples": (
        int | None,
        typer.Option(None, "--max-train-examples", help="Train on the first N only."),
    ),
    "max_eval_examples": (int | None, MAX_EVAL),
    "seed": (int, typer.Option(42, "--seed")),
    "group_by_length": (
        bool,
        typer.Option(False, "--group-by-length", help="Batch similar lengths: less padding."),
    ),
    "precision": (str, typer.Option("fp32", "--precision", help="fp32 or bf16 (autocast).")),
    "eval_every": (
        int | None,
        typer.Option(None, "--eval-every", help="Also evaluate dev every N steps."),
    ),
    "device": (str, DEVICE),
    "nproc": (int, NPROC),
}


def loop_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the shared loop options (after its own); it receives them as `loop`.

    typer reads a command's options from its signature, so the wrapper shows typer the
    command's own parameters plus the shared ones, and hands the shared values on as a dict.
    """
    own = [
        p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "loop"
    ]
    keyword = inspect.Parameter.KEYWORD_ONLY
    shared = [
        inspect.Parameter(name, keyword, default=option, annotation=kind)
        for name, (kind, option) in _LOOP.items()
    ]

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        loop = {name: values.pop(name) for name in _LOOP}
        command(**values, loop=loop)

    wrapper.__signature__ = inspect.Signature(own + shared)  # type: ignore[attr-defined]
    return wrapper


def _run(info: TaskInfo, model: Path, output: Path, loop: dict[str, Any]) -> None:
    relaunch_under_torchrun(loop.pop("nproc"))
    check_strategy(info.strategy, info.kind)
    cfg = FinetuneConfig(**loop)
    cfg.epochs = loop["epochs"] or info.task.epochs
    cfg.lr = loop["lr"] or DEFAULT_LR[info.strategy]
    best = finetune(info, cfg, model, output)
    if best:  # rank 0 (other torchrun ranks return {})
        typer.echo(json.dumps(best))


@app.command("glue")
@loop_options
def glue(
    task: str = typer.Option(..., "--task", help="sst2, mrpc, rte, stsb, cola, qnli, qqp, ..."),
    model: Path = MODEL,
    data: Path = typer.Option(..., "--data", help="The task's folder (train.tsv, dev.tsv)."),
    output: Path = OUTPUT,
    strategy: str = STRATEGY,
    max_length: int | None = MAX_LENGTH,
    template: str | None = TEMPLATE,
    verbalizer: str | None = VERBALIZER,
    *,
    loop: dict[str, Any],
) -> None:
    """Fine-tune on a GLUE task (MNLI is scored on dev_matched)."""
    spec = tasks.get_task(task)
    info = TaskInfo(
        kind="regression" if spec.is_regression else "classification",
        metrics=list(spec.metrics),
        labels=list(spec.labels) if spec.labels else None,
        max_length=max_length,
        strategy=strategy,
        source=spec.name,
        data={"dir": str(data.resolve()), "dev": spec.dev_splits[0]},
    )
    if strategy == "prompt":
        info.prompt = prompt_config(info.source, info.labels, template, verbalizer)
    _run(info, model, output, loop)


@app.command("classify")
@loop_options
def classify(
    model: Path = MODEL,
    train: Path = typer.Option(..., "--train", help=".csv, .tsv or .jsonl with a header/keys."),
    dev: Path = typer.Option(..., "--dev"),
    text_column: str = typer.Option(..., "--text-column"),
    pair_column: str | None = typer.Option(None, "--pair-column"),
    label_column: str = typer.Option("label", "--label-column"),
    regression: bool = typer.Option(False, "--regression", help="Float labels; MSE loss."),
    output: Path = OUTPUT,
    strategy: str = STRATEGY,
    max_length: int | None = MAX_LENGTH,
    template: str | None = TEMPLATE,
    verbalizer: str | None = VERBALIZER,
    *,
    loop: dict[str, Any],
) -> None:
    """Fine-tune a text (pair) classifier or regressor on your own files."""
    kind = "regression" if regression else "classification"
    columns = {"text_column": text_column, "pair_column": pair_column}
    labels = tasks.read_examples(train, **columns, label_column=label_column, task=kind).labels
    if labels is not None and len(labels) < 2:
        raise DataError(f"'{train}' has only the label {labels}; classification needs two or more")
    # Fail on a bad dev file now, not after an epoch of training.
    tasks.read_examples(dev, **columns, label_column=label_column, labels=labels, task=kind)
    metrics = ["pearson", "spearman"] if regression else ["accuracy"]
    if labels is not None and len(labels) == 2:
        metrics.append("f1")
    info = TaskInfo(
        kind=kind,
        metrics=metrics,
        labels=labels,
        max_length=max_length,
        strategy=strategy,
        data={
            "train": str(train.resolve()),
            "dev": str(dev.resolve()),
            **columns,
            "label_column": label_column,
        },
    )
    if strategy == "prompt":
        info.prompt = prompt_config(info.source, info.labels, template, verbalizer)
    _run(info, model, output, loop)


# NER file layouts: CoNLL columns (word ... TAG, IOB1 or IOB2) and one character per line
# (`字 B-LOC`, strict BIO, as Chinese NER sets ship), with their usual train/dev file names.
NER_FORMATS = {"conll": ("eng.train", "eng.testa"), "char-bio": ("train.txt", "dev.txt")}


@app.command("ner")
@loop_options
def ner(
    model: Path = MODEL,
    data: Path = typer.Option(..., "--data", help="Folder with the train and dev files."),
    output: Path = OUTPUT,
    file_format: str = typer.Option(
        "conll",
        "--format",
        help="conll (word ... TAG, IOB1/IOB2) or char-bio (one character per line, BIO).",
    ),
    train_file: str | None = typer.Option(
        None, "--train-file", help="In --data; default eng.train (conll), train.txt (char-bio)."
    ),
    dev_file: str | None = typer.Option(
        None, "--dev-file", help="In --data; default eng.testa (conll), dev.txt (char-bio)."
    ),
    strategy: str = STRATEGY,
    max_length: int | None = MAX_LENGTH,
    stride: int | None = typer.Option(
        None,
        "--stride",
        help="Split sentences longer than --max-length into windows sharing this many tokens "
        "(default: truncate them, with a warning).",
    ),
    *,
    loop: dict[str, Any],
) -> None:
    """Fine-tune a named-entity tagger; scored by entity-level F1 (seqeval-style)."""
    if file_format not in NER_FORMATS:
        raise ConfigError(f"--format {file_format!r} is not one of {', '.join(NER_FORMATS)}")
    default_train, default_dev = NER_FORMATS[file_format]
    files = {"train": train_file or default_train, "dev": dev_file or default_dev}
    scheme = tasks.ner_scheme(file_format)
    # Labels from both splits so a type seen only in dev still has an output.
    sentences = [s for f in files.values() for s in tasks.read_conll(data / f, scheme)]
    info = TaskInfo(
        kind="ner",
        metrics=["entity_f1", "entity_precision", "entity_recall"],
        labels=tasks.ner_labels(sentences),
        max_length=max_length,
        stride=stride,
        strategy=strategy,
        source="conll2003" if file_format == "conll" else "custom",
        data={"dir": str(data.resolve()), **files, "format": file_format},
    )
    _run(info, model, output, loop)


@app.command("squad")
@loop_options
def squad(
    model: Path = MODEL,
    data: Path = typer.Option(
        ..., "--data", help="Folder with train-vV*.json[.gz] and dev-vV*.json[.gz]."
    ),
    version: str = typer.Option(
        "1.1", "--squad-version", help="1.1, or 2.0 (unanswerable questions, HasAns/NoAns)."
    ),
    output: Path = OUTPUT,
    strategy: str = STRATEGY,
    max_length: int | None = MAX_LENGTH,
    doc_stride: int = typer.Option(128, "--doc-stride"),
    *,
    loop: dict[str, Any],
) -> None:
    """Fine-tune extractive QA on SQuAD v1.1 or v2.0; scored by the official EM/F1 (0-100)."""
    if version not in ("1.1", "2.0"):
        raise ConfigError(f"--squad-version {version!r} is not one of 1.1, 2.0")
    train, dev = _find(data, f"train-v{version}"), _find(data, f"dev-v{version}")
    info = _qa_info("squad", data, train, dev, max_length, doc_stride, strategy)
    _run(info, model, output, loop)


@app.command("cmrc")
@loop_options
def cmrc(
    model: Path = MODEL,
    data: Path = typer.Option(..., "--data", help="Folder with the CMRC 2018 JSON files."),
    train_file: str = typer.Option(
        "cmrc2018_train.json", "--train-file", help="In --data; e.g. cmrc2018_trial.json."
    ),
    dev_file: str = typer.Option("cmrc2018_dev.json", "--dev-file", help="In --data."),
    output: Path = OUTPUT,
    strategy: str = STRATEGY,
    max_length: int | None = MAX_LENGTH,
    doc_stride: int = typer.Option(128, "--doc-stride"),
    *,
    loop: dict[str, Any],
) -> None:
    """Fine-tune Chinese extractive QA on CMRC 2018 (SQuAD format, character spans); scored by
    the official CMRC 2018 EM and character F1 (0-100)."""
    if not (data / train_file).is_file():
        raise DataError(
            f"'{data / train_file}' does not exist; without the train file, train on the trial "
            "set: --train-file cmrc2018_trial.json"
        )
    if not (data / dev_file).is_file():
        raise DataError(f"'{data / dev_file}' does not exist; pass --dev-file NAME")
    info = _qa_info("cmrc2018", data, train_file, dev_file, max_length, doc_stride, strategy)
    _run(info, model, output, loop)


def _qa_info(
    source: str,
    data: Path,
    train: str,
    dev: str,
    max_length: int | None,
    doc_stride: int,
    strategy: str,
) -> TaskInfo:
    """Extractive QA on SQuAD-format files in `data`, scored by EM and F1 (F1 picks `best/`)."""
    return TaskInfo(
        kind="squad",
        metrics=["f1", "exact_match"],
        max_length=max_length,
        doc_stride=doc_stride,
        strategy=strategy,
        source=source,
        data={"dir": str(data.resolve()), "train": train, "dev": dev},
    )


def _find(folder: Path, stem: str) -> str:
    """The first of STEM.json, STEM.json.gz, STEM*.json[.gz] in `folder`."""
    found = (p.name for p in folder.glob(f"{stem}*") if p.name.endswith((".json", ".json.gz")))
    candidates = [f"{stem}.json", f"{stem}.json.gz", *sorted(found)]
    for name in candidates:
        if (folder / name).is_file():
            return name
    raise DataError(
        f"no {stem}*.json[.gz] in '{folder}'; point --data at the SQuAD folder "
        "(and --squad-version at its version)"
    )


def evaluate(
    run_dir: Path = typer.Argument(..., help="A `bertforge finetune` run directory."),
    data: Path | None = typer.Option(
        None, "--data", help="Data folder (dev file for classify runs); default: the run's own."
    ),
    max_eval_examples: int | None = MAX_EVAL,
    batch_size: int = EVAL_BATCH,
    device: str = DEVICE,
) -> None:
    """Score RUN_DIR/best on dev data; prints one JSON object of metrics."""
    cfg = FinetuneConfig(eval_batch_size=batch_size, device=device, progress=False)
    typer.echo(json.dumps(evaluate_run(run_dir, data, cfg, max_eval_examples)))


def predict(
    run_dir: Path = typer.Argument(..., help="A `bertforge finetune` run directory."),
    input_path: Path = typer.Option(..., "--input", help="Texts (same format as training)."),
    output: Path = typer.Option(..., "--output", "-o", help="OUT.jsonl or OUT.tsv."),
    batch_size: int = EVAL_BATCH,
    device: str = DEVICE,
) -> None:
    """Predict with RUN_DIR/best; writes one record per input."""
    cfg = FinetuneConfig(eval_batch_size=batch_size, device=device, progress=False)
    count = predict_run(run_dir, input_path, output, cfg)
    typer.echo(f"wrote {count} predictions to {output}")
