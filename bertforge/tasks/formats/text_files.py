"""User classification/regression data: `.csv`, `.tsv` or `.jsonl` files with named columns."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from bertforge.errors import ConfigError, DataError
from bertforge.tasks.formats.examples import Example, tsv_rows
from bertforge.textio import read_text

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".tsv", ".jsonl")
TASKS = ("classification", "regression")


class ExampleSet(NamedTuple):
    """Examples plus the label list their int labels index (None for regression)."""

    examples: list[Example]
    labels: list[str] | None


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    text = read_text(path).removeprefix("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise DataError(f"'{path}' is empty; expected a header row and one example per row")
    blank = 0
    for row in reader:
        # line_num is where the row *ends*, which is right for error messages on one-line rows.
        if any((v or "").strip() for v in row.values() if isinstance(v, str)):
            yield reader.line_num, row
        else:  # ",,," lines, e.g. from a spreadsheet: not examples, but say how many
            blank += 1
    if blank:
        logger.warning("'%s': skipped %d row(s) with every field empty", path, blank)


def _tsv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = tsv_rows(path)
    header = next(rows, None)
    if header is None:
        raise DataError(f"'{path}' is empty; expected a header row and one example per row")
    names = [name.strip() for name in header[1]]
    for line, fields in rows:
        while len(fields) > len(names) and not fields[-1].strip():
            fields.pop()  # trailing empty fields (a tab at the end of the line)
        if len(fields) > len(names):  # zipping would drop the rest of the row unseen
            raise DataError(
                f"{path}:{line}: {len(fields)} tab-separated fields but the header names "
                f"{len(names)}; does a text hold a tab? Replace it with a space"
            )
        yield line, dict(zip(names, fields, strict=False))


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, raw in enumerate(read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{line}: invalid JSON ({e.msg}); fix the line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{line}: expected a JSON object, got {type(record).__name__}")
        yield line, record


def read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line, record) of every row of a .csv/.tsv (header) or .jsonl (objects) file."""
    readers = {".csv": _csv_records, ".tsv": _tsv_records, ".jsonl": _jsonl_records}
    if path.suffix not in readers:
        raise DataError(f"'{path}' has an unsupported extension; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist; check the path")
    records = list(readers[path.suffix](path))
    if not records:
        raise DataError(f"'{path}' has no examples; expected one example per row")
    return records


def record_field(path: Path, line: int, record: dict[str, Any], column: str) -> str:
    """One column of a record as text; a missing one is an error naming the line."""
    value = record.get(column)
    if value is None:
        found = ", ".join(repr(k) for k in record)
        raise DataError(f"{path}:{line}: no value for column {column!r}; columns found: {found}")
    if isinstance(value, bool):
        value = int(value)  # JSON true/false labels become "1"/"0"
    return value if isinstance(value, str) else json.dumps(value)


def _sorted_labels(values: set[str]) -> list[str]:
    # Numeric labels sort by value so "10" comes after "2"; everything else sorts as text.
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def read_examples(
    path: str | Path,
    text_column: str,
    pair_column: str | None = None,
    label_column: str | None = "label",
    labels: Sequence[str] | None = None,
    task: str = "classification",
) -> ExampleSet:
    """Read examples from a `.csv`, `.tsv` or `.jsonl` file with a header / named keys.

    Classification: labels become ids into `labels`; pass the train set's label list for dev
    and test files, or leave it None on train to infer it (sorted, numerically when all labels
    are numbers). Regression (`task="regression"`): labels are parsed as floats.
    `label_column=None` reads unlabelled text.
    """
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}")
    path = Path(path)
    records = read_records(path)
    rows = []
    for line, record in records:
        text_a = record_field(path, line, record, text_column)
        text_b = record_field(path, line, record, pair_column) if pair_column else None
        for column, text in ((text_column, text_a), (pair_column, text_b)):
            if column and not (text or "").strip():
                raise DataError(f"{path}:{line}: column {column!r} is empty; fix or drop the row")
        raw = record_field(path, line, record, label_column).strip() if label_column else None
        if raw == "":
            raise DataError(f"{path}:{line}: label column {label_column!r} is empty; fill it in")
        rows.append((line, text_a, text_b, raw))
    if label_column is None:
        examples = [Example(a, b, None, f"{path.name}:{n}") for n, a, b, _ in rows]
        return ExampleSet(examples, list(labels) if labels is not None else None)
    if task == "regression":
        return ExampleSet([_regression(path, *row) for row in rows], None)
    label_list = list(labels) if labels is not None else _sorted_labels({r[3] for r in rows})
    index = {label: i for i, label in enumerate(label_list)}
    examples = []
    for line, text_a, text_b, raw in rows:
        if raw not in index:
            raise DataError(
                f"{path}:{line}: label {raw!r} is not in the label set {label_list}; "
                "relabel the row or pass the full label list"
            )
        examples.append(Example(text_a, text_b, index[raw], f"{path.name}:{line}"))
    logger.info("read %d examples with %d labels from %s", len(examples), len(label_list), path)
    return ExampleSet(examples, label_list)


def _regression(path: Path, line: int, text_a: str, text_b: str | None, raw: str) -> Example:
    try:
        score = float(raw)
    except ValueError:
        raise DataError(
            f"{path}:{line}: label {raw!r} is not a number; regression needs float labels"
        ) from None
    return Example(text_a, text_b, score, f"{path.name}:{line}")
