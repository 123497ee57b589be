"""`choice`: multiple choice in the SWAG format: a context and N candidate endings per row,
scored by accuracy. Each (context, ending) pair is encoded on its own (`sent1` as the first
segment, `sent2` + ending as the second, as the SWAG paper and HF's `run_swag` do) and the
family's multiple-choice head scores them side by side.

Files: .csv/.tsv with a header or .jsonl objects, holding `sent1`, `sent2` (may be empty),
`ending0` ... `ending{N-1}` and an integer `label` (SWAG's own train.csv / val.csv)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertforge.errors import DataError
from bertforge.objectives import Classification, Objective
from bertforge.tasks.base import (
    Features,
    Option,
    Split,
    Task,
    TaskSetup,
    argmax_rows,
    probabilities,
)
from bertforge.tasks.formats import read_records, record_field
from bertforge.tasks.registry import register_task
from bertforge.tasks.scoring import compute
from bertforge.tokenization import Tokenizer

ENDING = re.compile(r"ending(\d+)$")
SUFFIXES = (".csv", ".tsv", ".jsonl")


@dataclass(frozen=True)
class Choice:
    """One question: a context, the shared start of every ending, the endings, the index of
    the right one (None when unlabelled) and where it came from."""

    context: str
    start: str
    endings: tuple[str, ...]
    label: int | None
    guid: str


def read_choices(path: Path, options: Mapping[str, Any], labelled: bool) -> list[Choice]:
    """Rows of a SWAG-format file; every row has the same number of endings (at least 2)."""
    records = read_records(path)
    line, first = records[0]
    endings = sorted(
        (int(m.group(1)), key) for key in first if (m := ENDING.match(key)) is not None
    )
    if len(endings) < 2 or [i for i, _ in endings] != list(range(len(endings))):
        raise DataError(
            f"{path}:{line}: expected columns ending0, ending1, ... (two or more); found "
            f"{', '.join(map(repr, first))}"
        )
    choices = []
    for line, record in records:
        texts = tuple(record_field(path, line, record, key) for _, key in endings)
        label = None
        if labelled:
            raw = record_field(path, line, record, options["label_column"]).strip()
            if not raw.isdigit() or int(raw) >= len(texts):
                raise DataError(
                    f"{path}:{line}: label {raw!r} is not an ending's index (0-{len(texts) - 1})"
                )
            label = int(raw)
        start = record.get(options["start_column"]) or ""
        context = record_field(path, line, record, options["context_column"])
        choices.append(Choice(context, str(start), texts, label, f"{path.name}:{line}"))
    return choices


class ChoiceTask(Task):
    name = "choice"
    aliases = ("swag", "multiple-choice")
    command = "choice"
    help = "Multiple choice (SWAG format: a context and N endings); scored by accuracy"
    head = "multiple_choice"
    options = (
        Option("context_column", "sent1", "The context's column."),
        Option("start_column", "sent2", "The column every ending continues (may be empty)."),
        Option("label_column", "label", "The column holding the right ending's index."),
    )
    predict_input = (
        "a .csv/.tsv/.jsonl in the training format (context, start and ending0..N columns); "
        "a label column is ignored"
    )
    unit = "questions"

    def default_files(self, options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        return {
            "train": tuple(f"train{s}" for s in SUFFIXES),
            "dev": tuple(f"{name}{s}" for name in ("val", "dev") for s in SUFFIXES),
        }

    def setup(
        self, files: dict[str, Path], options: dict[str, Any], max_length: int | None
    ) -> TaskSetup:
        widths = {len(read_choices(f, options, True)[0].endings) for f in files.values()}
        if len(widths) != 1:
            raise DataError(f"the train and dev files have different numbers of endings {widths}")
        return self.new_setup(files, options, max_length, ["accuracy"])

    def model_options(self, setup: TaskSetup) -> dict[str, Any]:
        return {}

    def objectives(self, setup: TaskSetup) -> list[Objective]:
        return [Classification()]

    def read(self, setup: TaskSetup, split: str) -> list[Any]:
        return read_choices(Path(setup.files[split]), setup.options, labelled=True)

    def read_inputs(self, setup: TaskSetup, path: Path) -> list[Any]:
        return read_choices(path, setup.options, labelled=False)

    def examples_from(self, setup: TaskSetup, values: Sequence[Any]) -> list[Any]:
        """{"context": ..., "endings": [...]} dicts ("start" optional)."""
        out = []
        for i, value in enumerate(values):
            if not isinstance(value, Mapping) or not {"context", "endings"} <= set(value):
                raise DataError(
                    f"input {i} is {value!r}; pass {{'context': ..., 'endings': [...]}}"
                )
            endings = tuple(str(e) for e in value["endings"])
            start = str(value.get("start", ""))
            out.append(Choice(str(value["context"]), start, endings, None, f"input-{i}"))
        return out

    def texts(self, examples: Iterable[Choice]) -> Iterator[str]:
        for e in examples:
            yield e.context
            yield from (f"{e.start} {ending}" for ending in e.endings)

    def encode(
        self, setup: TaskSetup, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        """Per example: one row of N token lists, (context, start + ending_i)."""
        firsts = [e.context for e in examples for _ in e.endings]
        seconds = [f"{e.start} {ending}".strip() for e in examples for ending in e.endings]
        enc = tokenizer(firsts, seconds, truncation=True, max_length=setup.max_length)
        features: Features = {key: [] for key in ("input_ids", "token_type_ids", "attention_mask")}
        at = 0
        for e in examples:
            n = len(e.endings)
            for key in features:
                features[key].append(enc[key][at : at + n])
            at += n
        if all(e.label is not None for e in examples):
            features["labels"] = [e.label for e in examples]
        return features

    def score(self, setup: TaskSetup, split: Split, rows: list[Any]) -> dict[str, float]:
        return compute(setup.metrics, argmax_rows(rows), split.features["labels"])

    def records(self, setup: TaskSetup, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        out = []
        for e, logits in zip(split.examples, rows, strict=True):
            best = int(np.argmax(logits))
            scores = [round(float(p), 6) for p in probabilities(logits)]
            out.append({"guid": e.guid, "label": best, "ending": e.endings[best], "scores": scores})
        return out


register_task(ChoiceTask())
