"""GLUE tasks: what each task's files look like, and a reader for the official TSVs.

Files are read as `download_glue_data.py` writes them: UTF-8 (MRPC with a BOM), one header row
(CoLA's train/dev have none), fields split on tab with no quoting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from bertforge.errors import ConfigError, DataError
from bertforge.tasks.formats.examples import Example, tsv_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    """A column found by header name; `position` is used only in files without a header."""

    name: str
    position: int | None = None


@dataclass(frozen=True)
class GlueSpec:
    """How to read one GLUE task and score it."""

    name: str
    text_a: Column
    text_b: Column | None
    label: Column
    labels: tuple[str, ...] | None  # None: regression (STS-B)
    metrics: tuple[str, ...]
    files: dict[str, str] = field(
        default_factory=lambda: {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    )
    dev_splits: tuple[str, ...] = ("dev",)

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        """Output size of the head: number of classes, or 1 for regression."""
        return 1 if self.labels is None else len(self.labels)


_NLI = ("entailment", "not_entailment")
_MNLI_FILES = {
    "train": "train.tsv",
    "dev_matched": "dev_matched.tsv",
    "dev_mismatched": "dev_mismatched.tsv",
    "test_matched": "test_matched.tsv",
    "test_mismatched": "test_mismatched.tsv",
}

GLUE_SPECS: dict[str, GlueSpec] = {
    t.name: t
    for t in (
        # CoLA train/dev rows are `source, label, original label, sentence` with no header.
        GlueSpec("CoLA", Column("sentence", 3), None, Column("label", 1), ("0", "1"), ("mcc",)),
        GlueSpec("SST-2", Column("sentence"), None, Column("label"), ("0", "1"), ("accuracy",)),
        GlueSpec(
            "MRPC",
            Column("#1 String"),
            Column("#2 String"),
            Column("Quality"),
            ("0", "1"),
            ("accuracy", "f1"),
        ),
        GlueSpec(
            "QQP",
            Column("question1"),
            Column("question2"),
            Column("is_duplicate"),
            ("0", "1"),
            ("accuracy", "f1"),
        ),
        GlueSpec(
            "STS-B",
            Column("sentence1"),
            Column("sentence2"),
            Column("score"),
            None,
            ("pearson", "spearman"),
        ),
        GlueSpec(
            "MNLI",
            Column("sentence1"),
            Column("sentence2"),
            Column("gold_label"),
            ("contradiction", "entailment", "neutral"),
            ("accuracy",),
            files=_MNLI_FILES,
            dev_splits=("dev_matched", "dev_mismatched"),
        ),
        GlueSpec(
            "QNLI", Column("question"), Column("sentence"), Column("label"), _NLI, ("accuracy",)
        ),
        GlueSpec(
            "RTE", Column("sentence1"), Column("sentence2"), Column("label"), _NLI, ("accuracy",)
        ),
        GlueSpec(
            "WNLI",
            Column("sentence1"),
            Column("sentence2"),
            Column("label"),
            ("0", "1"),
            ("accuracy",),
        ),
    )
}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def glue_spec(name: str) -> GlueSpec:
    """Look a task up by name, ignoring case, '-' and '_' (`sst2`, `SST-2`, `sts_b` all work)."""
    for task in GLUE_SPECS.values():
        if _key(task.name) == _key(name):
            return task
    raise ConfigError(f"unknown GLUE task {name!r}; choose from {', '.join(GLUE_SPECS)}")


def _resolve_columns(
    task: GlueSpec, path: Path, first: list[str], labelled: bool
) -> tuple[bool, list[int | None]]:
    """(first row is a header, [text_a, text_b, label] field indices; None = absent)."""
    wanted = [task.text_a, task.text_b, task.label]
    names = [name.strip() for name in first]
    if task.text_a.name in names or task.text_a.position is None:
        where = {name: i for i, name in enumerate(names)}
        required = [task.text_a, task.text_b, task.label if labelled else None]
        missing = [c.name for c in required if c is not None and c.name not in where]
        if missing:
            raise DataError(
                f"'{path}' has no column {', '.join(repr(m) for m in missing)} needed for "
                f"{task.name}; its header is {first!r}; is this the {task.name} file?"
            )
        return True, [where.get(c.name) if c else None for c in wanted]
    return False, [c.position if c else None for c in wanted]


def _label(task: GlueSpec, path: Path, line: int, value: str) -> int | float:
    value = value.strip()
    if task.labels is None:
        try:
            return float(value)
        except ValueError:
            raise DataError(
                f"{path}:{line}: {task.name} score {value!r} is not a number; fix or drop the row"
            ) from None
    if value not in task.labels:
        raise DataError(
            f"{path}:{line}: label {value!r} is not a {task.name} label; valid labels: "
            f"{', '.join(task.labels)}"
        )
    return task.labels.index(value)


def read_glue(task: str | GlueSpec, data_dir: str | Path, split: str) -> list[Example]:
    """Read one split (`train`, `dev`, `test`; MNLI: `dev_matched`, `dev_mismatched`, ...)
    from the task's folder. Labels are ids into `labels` (floats for STS-B); test splits are
    unlabelled (`label=None`). `guid` is `split-line`."""
    spec = task if isinstance(task, GlueSpec) else glue_spec(task)
    if split not in spec.files:
        choices = ", ".join(spec.files)
        raise ConfigError(f"{spec.name} has no split {split!r}; choose from {choices}")
    path = Path(data_dir) / spec.files[split]
    if not path.is_file():
        raise DataError(
            f"{spec.name} {split} file not found: expected '{path}'; point data_dir at the "
            f"folder holding {spec.name}'s {', '.join(spec.files.values())}"
        )
    return read_glue_file(spec, path, split, labelled=not split.startswith("test"))


def read_glue_file(spec: GlueSpec, path: Path, split: str, labelled: bool) -> list[Example]:
    """One TSV in the task's format (header or, for CoLA, none); `labelled=False` reads the
    texts alone, whether the file has a label column or not."""
    rows = list(tsv_rows(path))
    if not rows:
        raise DataError(f"'{path}' is empty; expected the {spec.name} {split} TSV")
    has_header, (ia, ib, il) = _resolve_columns(spec, path, rows[0][1], labelled)
    if not labelled:
        il = None
    if has_header:
        rows = rows[1:]
    if not rows:
        raise DataError(f"'{path}' has a header but no rows; expected the {spec.name} {split} TSV")
    needed = max(i for i in (ia, ib, il) if i is not None) + 1
    examples = []
    for line, fields in rows:
        if len(fields) < needed:
            raise DataError(
                f"{path}:{line}: expected at least {needed} tab-separated fields for {spec.name}, "
                f"found {len(fields)}; fix or drop the row"
            )
        text_a = fields[ia]  # type: ignore[index]
        text_b = fields[ib] if ib is not None else None
        for column, text in ((spec.text_a, text_a), (spec.text_b, text_b)):
            if column is not None and not (text or "").strip():
                raise DataError(
                    f"{path}:{line}: column {column.name!r} is empty; {spec.name} needs text "
                    "there, so fix or drop the row"
                )
        label = _label(spec, path, line, fields[il]) if il is not None else None
        examples.append(Example(text_a, text_b, label, guid=f"{split}-{line}"))
    logger.info("read %d %s %s examples from %s", len(examples), spec.name, split, path)
    return examples
