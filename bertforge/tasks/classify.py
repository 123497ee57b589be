"""`classify`: a classifier (or, with `regression`, a regressor) of a text or text pair from
your own .csv, .tsv or .jsonl files with named columns."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bertforge.errors import DataError
from bertforge.tasks.base import REQUIRED, Option, TaskSetup
from bertforge.tasks.formats import read_examples
from bertforge.tasks.registry import register_task
from bertforge.tasks.sentence import SentenceTask

SUFFIXES = (".csv", ".tsv", ".jsonl")


class ClassifyTask(SentenceTask):
    name = "classify"
    command = "classify"
    help = "A text (pair) classifier or regressor on your own CSV/TSV/JSONL files"
    options = (
        Option("text_column", REQUIRED, "The column (or JSON key) holding the text."),
        Option("pair_column", None, "The second text's column, for text pairs."),
        Option("label_column", "label", "The label's column."),
        Option("regression", False, "Float labels: one score, MSE loss.", bool),
    )
    predict_input = "a .csv/.tsv/.jsonl with the training text column(s); a label column is ignored"

    def pairs(self, setup: TaskSetup) -> bool:
        return setup.options.get("pair_column") is not None

    def default_files(self, options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        return {split: tuple(f"{split}{s}" for s in SUFFIXES) for split in ("train", "dev")}

    def _read(self, path: Path, options: Mapping[str, Any], labels: list[str] | None) -> Any:
        kind = "regression" if options["regression"] else "classification"
        return read_examples(
            path,
            options["text_column"],
            options["pair_column"],
            options["label_column"],
            labels=labels,
            task=kind,
        )

    def setup(
        self, files: dict[str, Path], options: dict[str, Any], max_length: int | None
    ) -> TaskSetup:
        labels = self._read(files["train"], options, None).labels
        if labels is not None and len(labels) < 2:
            raise DataError(
                f"'{files['train']}' has only the label {labels}; classification needs two or more"
            )
        self._read(files["dev"], options, labels)  # a bad dev file fails now, not after an epoch
        metrics = ["pearson", "spearman"] if labels is None else ["accuracy"]
        if labels is not None and len(labels) == 2:
            metrics.append("f1")
        return self.new_setup(files, options, max_length, metrics, labels)

    def read(self, setup: TaskSetup, split: str) -> list[Any]:
        return self._read(Path(setup.files[split]), setup.options, setup.labels).examples

    def read_inputs(self, setup: TaskSetup, path: Path) -> list[Any]:
        o = setup.options
        return read_examples(path, o["text_column"], o["pair_column"], None).examples


register_task(ClassifyTask())
