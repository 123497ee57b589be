"""The GLUE tasks (`finetune glue --task sst2`), one registered task per benchmark task, read
from the official TSVs and scored by each task's official metrics (MNLI on dev_matched)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bertforge.tasks.base import TaskSetup
from bertforge.tasks.formats import GLUE_SPECS, GlueSpec, read_examples, read_glue_file
from bertforge.tasks.registry import register_task, task_key
from bertforge.tasks.sentence import SentenceTask


class GlueTask(SentenceTask):
    command = "glue"
    predict_input = (
        "a TSV in the task's own format (its header, or CoLA's headerless columns), or a "
        ".csv/.jsonl with its column names; labels, if present, are ignored"
    )

    def __init__(self, spec: GlueSpec) -> None:
        self.spec = spec
        self.name = task_key(spec.name)
        self.help = f"GLUE {spec.name}, scored by {', '.join(spec.metrics)}"

    def pairs(self, setup: TaskSetup) -> bool:
        return self.spec.text_b is not None

    def default_files(self, options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        return {
            "train": (self.spec.files["train"],),
            "dev": (self.spec.files[self.spec.dev_splits[0]],),
        }

    def setup(
        self, files: dict[str, Path], options: dict[str, Any], max_length: int | None
    ) -> TaskSetup:
        return self.new_setup(files, options, max_length, self.spec.metrics, self.spec.labels)

    def read(self, setup: TaskSetup, split: str) -> list[Any]:
        return read_glue_file(self.spec, Path(setup.files[split]), split, labelled=True)

    def read_inputs(self, setup: TaskSetup, path: Path) -> list[Any]:
        if path.suffix in (".csv", ".jsonl"):
            spec = self.spec
            pair = spec.text_b.name if spec.text_b else None
            return read_examples(path, spec.text_a.name, pair, label_column=None).examples
        return read_glue_file(self.spec, path, "input", labelled=False)


for _spec in GLUE_SPECS.values():
    register_task(GlueTask(_spec))
