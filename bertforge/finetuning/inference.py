"""Running a fine-tuned model: reading and encoding a split through its task, model outputs
per example, and `evaluate` / `predict` of a finished run from its directory alone
(`task.json` and `best/`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertforge.atomic import atomic_path
from bertforge.errors import DataError
from bertforge.finetuning.batches import eval_order, iterate, row_lengths
from bertforge.finetuning.frozen import EncoderCache
from bertforge.finetuning.strategies import Strategy, get_strategy
from bertforge.models.encoder import set_unpadded
from bertforge.tasks import Features, Split, Task, TaskSetup, find_file, get_task
from bertforge.tokenization import Tokenizer
from bertforge.tokenization.coverage import warn_if_unknown
from bertforge.training.runtime import autocast

logger = logging.getLogger(__name__)

BEST_DIR = "best"
OUTPUT_SUFFIXES = (".jsonl", ".tsv")


@dataclass
class FinishedRun:
    """A fine-tuning run's task, setup, strategy, best model (eval mode) and tokenizer."""

    task: Task
    setup: TaskSetup
    strategy: Strategy
    model: nn.Module
    tokenizer: Tokenizer

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0


def load_run(run_dir: Path) -> FinishedRun:
    setup = TaskSetup.load(run_dir)
    best = run_dir / BEST_DIR
    if not best.is_dir():
        raise DataError(f"'{run_dir}' has no {BEST_DIR}/ checkpoint; did fine-tuning finish?")
    task, strategy = get_task(setup.task), get_strategy(setup.strategy)
    tokenizer = Tokenizer.from_pretrained(best)
    model = strategy.load(strategy.build(task, setup, best, tokenizer), best)
    return FinishedRun(task, setup, strategy, model.eval(), tokenizer)


def encode_split(
    task: Task,
    strategy: Strategy,
    setup: TaskSetup,
    tokenizer: Tokenizer,
    examples: list[Any],
    train: bool,
    where: str,
) -> Split:
    """Encode examples as the model reads them, after checking the tokenizer covers them."""
    if not examples:
        raise DataError(f"{where} holds no examples")
    warn_if_unknown(tokenizer, task.texts(examples), where)
    features = task.encode(setup, tokenizer, strategy.examples(setup, tokenizer, examples), train)
    if not features["input_ids"]:
        raise DataError(f"{where} produced no examples to {'train' if train else 'score'}")
    return Split(examples, features)


def load_split(
    task: Task,
    strategy: Strategy,
    setup: TaskSetup,
    tokenizer: Tokenizer,
    split: str,
    limit: int | None,
    train: bool,
) -> Split:
    """The first `limit` examples of a split (all with None), read and encoded."""
    examples = task.read(setup, split)
    examples = task.first(examples, limit) if limit else examples
    where = f"the {split} file '{setup.files[split]}'"
    return encode_split(task, strategy, setup, tokenizer, examples, train, where)


@torch.no_grad()
def predict_rows(
    task: Task,
    model: nn.Module,
    features: Features,
    pad_id: int,
    batch_size: int,
    precision: str,
    cache: EncoderCache | None = None,
) -> list[Any]:
    """Model outputs per feature row (padding removed), in feature order. With `cache`, the
    encoder outputs come from its "dev" split."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    lengths = row_lengths(features)
    rows: list[Any] = [None] * len(lengths)
    for indices, batch in iterate(features, eval_order(lengths, batch_size), pad_id):
        batch = {k: v.to(device) for k, v in batch.items()}
        if cache is not None:
            cache.select("dev", indices)
        with autocast(precision, device):
            output = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        outputs = task.to_rows(output, [lengths[i] for i in indices])
        for i, row in zip(indices, outputs, strict=True):
            rows[i] = row
    model.train(was_training)
    return rows


def _ready(run: FinishedRun, device: str) -> None:
    set_unpadded(run.model.to(device))


def evaluate_run(
    run_dir: Path,
    data: Path | None = None,
    *,
    precision: str | None = None,
    max_eval_examples: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> dict[str, Any]:
    """Dev metrics of RUN_DIR/best, with the precision they were computed in: on the run's
    dev file, or on `data` (a dev file, or a folder the task finds its dev file in).
    `precision` defaults to the run's own."""
    run = load_run(run_dir)
    setup = run.setup
    if data is not None:
        candidates = run.task.default_files(setup.options)["dev"]
        dev = data if data.is_file() else find_file(data, None, candidates, "dev")
        setup.files["dev"] = str(dev.resolve())
    precision = precision or setup.precision
    _ready(run, device)
    split = load_split(
        run.task, run.strategy, setup, run.tokenizer, "dev", max_eval_examples, False
    )
    rows = predict_rows(run.task, run.model, split.features, run.pad_id, batch_size, precision)
    return {**run.task.score(setup, split, rows), "precision": precision}


def predict_run(
    run_dir: Path,
    inputs: Path | Sequence[Any],
    output: Path | None = None,
    *,
    precision: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """One record per input with RUN_DIR/best. `inputs` is a file in the task's training
    format (`Task.predict_input`) or a list of Python values (texts, pairs, question dicts,
    ...); `output` (.jsonl or .tsv) is written when given."""
    if output is not None and output.suffix not in OUTPUT_SUFFIXES:
        raise DataError(f"output '{output}' must end in {' or '.join(OUTPUT_SUFFIXES)}")
    run = load_run(run_dir)
    task, setup = run.task, run.setup
    if isinstance(inputs, str | Path):
        path = Path(inputs)
        if not path.is_file():
            raise DataError(f"input file '{path}' does not exist; check the path")
        examples, where = task.read_inputs(setup, path), f"'{path}'"
    else:
        examples, where = task.examples_from(setup, list(inputs)), "the inputs"
    _ready(run, device)
    split = encode_split(task, run.strategy, setup, run.tokenizer, examples, False, where)
    rows = predict_rows(
        task, run.model, split.features, run.pad_id, batch_size, precision or setup.precision
    )
    records = task.records(setup, split, rows)
    if output is not None:
        write_records(records, output)
    return records


def write_records(records: list[dict[str, Any]], path: Path) -> None:
    """JSON lines, or a TSV with a header (lists joined by spaces)."""
    with atomic_path(path) as tmp:
        if path.suffix == ".jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        else:
            keys = list(records[0])
            cells = [
                [" ".join(map(str, v)) if isinstance(v, list) else str(v) for v in r.values()]
                for r in records
            ]
            text = "\t".join(keys) + "\n" + "".join("\t".join(c) + "\n" for c in cells)
        tmp.write_text(text, encoding="utf-8")
