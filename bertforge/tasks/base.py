"""What a fine-tuning task is: one object holding its readers, feature encoding, task head,
objectives, metrics, default hyper-parameters and prediction records.

A task is registered by name (`registry.py`); the fine-tuning loop, `evaluate`, `predict`,
the Python API and the `finetune` command all go through it, so adding a task is one module
in this package. A run's resolved choices (files, labels, options, length) are a `TaskSetup`,
saved as `RUN_DIR/task.json`: `evaluate` and `predict` rebuild everything from it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from bertforge.atomic import write_text
from bertforge.errors import ConfigError, DataError
from bertforge.objectives import Objective
from bertforge.tokenization import Tokenizer

logger = logging.getLogger(__name__)

Features = dict[str, list[Any]]
TASK_FILE = "task.json"
REQUIRED = object()  # the default of an option the caller must give


@dataclass(frozen=True)
class Option:
    """A setting of a task (or strategy): a keyword of `bertforge.finetune(...)` and the CLI
    flag `--name-with-dashes` (plus `flags`)."""

    name: str
    default: Any = None
    help: str = ""
    type: type = str
    flags: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any) -> Any:
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.flag} {value!r} is not one of {', '.join(self.choices)}")
        return value

    @property
    def flag(self) -> str:
        return self.flags[0] if self.flags else "--" + self.name.replace("_", "-")


@dataclass
class TaskSetup:
    """What a run trains on, resolved once: the task, its files, its option values, labels,
    metrics and input length. Saved as `task.json` beside the run."""

    task: str  # registry name
    files: dict[str, str]  # split -> absolute path ("train", "dev")
    options: dict[str, Any] = field(default_factory=dict)  # the task's own option values
    labels: list[str] | None = None  # class or tag names; None for regression and QA
    metrics: list[str] = field(default_factory=list)  # the first selects best/
    max_length: int = 128
    strategy: str = "full"
    strategy_options: dict[str, Any] = field(default_factory=dict)  # e.g. the prompt template
    precision: str = "fp32"  # what training evaluated under; evaluate/predict default to it

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    def save(self, run_dir: Path) -> None:
        write_text(run_dir / TASK_FILE, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> TaskSetup:
        path = run_dir / TASK_FILE
        if not path.is_file():
            raise DataError(f"'{run_dir}' has no {TASK_FILE}; pass a `bertforge finetune` run dir")
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (TypeError, json.JSONDecodeError) as e:
            raise DataError(
                f"'{path}' is not a task file of this bertforge version ({e})"
            ) from None


@dataclass
class Split:
    """One split, read and encoded: the raw examples (for scoring) and model features."""

    examples: list[Any]
    features: Features


class Task:
    """A fine-tuning task. Subclasses set the class attributes and implement the readers,
    `encode`, `score` and `records`; the defaults here serve one-vector-per-example heads."""

    name: str  # registry name: `bertforge.finetune(name, ...)`
    command: str  # `bertforge finetune COMMAND` (tasks sharing one pick with --task)
    help: str  # one line for --help
    head: str  # task head kind (`families.TASK_KINDS`): which task model it trains
    options: tuple[Option, ...] = ()  # its own settings
    epochs: int = 3  # default epochs
    max_length: int = 128  # default tokens per input
    label_keys: tuple[str, ...] = ("labels",)  # batch fields beyond the model inputs
    # `--strategy frozen`: which encoder outputs are cached per row ("first": the [CLS]
    # state, "tokens": every token's); None runs the frozen encoder live.
    cache: str | None = None
    predict_input: str  # what `predict --input` reads, for --help and errors
    unit = "examples"  # what one predicted class is of (NER: words)
    aliases: ClassVar[tuple[str, ...]] = ()

    # -- setup --------------------------------------------------------------------------

    def default_files(self, options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        """Candidate file names (globs allowed, best first) per split in the data folder."""
        raise NotImplementedError

    def missing_hint(self) -> str:
        """Added to the error when a data file is not found."""
        return ""

    def setup(
        self, files: dict[str, Path], options: dict[str, Any], max_length: int | None
    ) -> TaskSetup:
        """Read what the run needs to know before training (labels, metrics), checking both
        files now rather than after an epoch."""
        raise NotImplementedError

    def new_setup(
        self,
        files: dict[str, Path],
        options: dict[str, Any],
        max_length: int | None,
        metrics: Sequence[str],
        labels: Sequence[str] | None = None,
    ) -> TaskSetup:
        """This task's setup for those files and options (the task's default length when
        `max_length` is None)."""
        return TaskSetup(
            task=self.name,
            files={split: str(path) for split, path in files.items()},
            options=dict(options),
            labels=None if labels is None else list(labels),
            metrics=list(metrics),
            max_length=max_length or self.max_length,
        )

    def check_settings(self, setup: TaskSetup, settings: Mapping[str, Any]) -> None:
        """Refuse run settings (batch size, ...) this task cannot train with."""

    # -- data ---------------------------------------------------------------------------

    def read(self, setup: TaskSetup, split: str) -> list[Any]:
        """The labelled examples of `split` ("train" or "dev")."""
        raise NotImplementedError

    def first(self, examples: list[Any], limit: int) -> list[Any]:
        """The first `limit` examples (`--max-train-examples`, `--max-eval-examples`)."""
        return examples[:limit]

    def read_inputs(self, setup: TaskSetup, path: Path) -> list[Any]:
        """Examples to predict, from a file in the training format (labels optional)."""
        raise NotImplementedError

    def examples_from(self, setup: TaskSetup, values: Sequence[Any]) -> list[Any]:
        """Examples to predict from Python values (`bertforge.predict(run, [...])`)."""
        raise NotImplementedError

    def texts(self, examples: Iterable[Any]) -> Iterator[str]:
        """The text of each example, for the tokenizer-coverage check."""
        raise NotImplementedError

    def encode(
        self, setup: TaskSetup, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        raise NotImplementedError

    def label_dtype(self, setup: TaskSetup) -> torch.dtype:
        """The dtype of scalar labels in a batch."""
        return torch.long

    def batch_keys(self, setup: TaskSetup) -> tuple[str, ...]:
        """The feature keys a training batch carries beside the model inputs."""
        return self.label_keys

    # -- model and loss -----------------------------------------------------------------

    def model_options(self, setup: TaskSetup) -> dict[str, Any]:
        return {"num_labels": setup.num_labels, "labels": setup.labels}

    def objectives(self, setup: TaskSetup) -> list[Objective]:
        raise NotImplementedError

    # -- outputs ------------------------------------------------------------------------

    def to_rows(self, output: Any, lengths: list[int]) -> list[Any]:
        """Per-example numpy outputs with padding cut off, in batch order."""
        return list(output.float().cpu().numpy())

    def score(self, setup: TaskSetup, split: Split, rows: list[Any]) -> dict[str, float]:
        raise NotImplementedError

    def records(self, setup: TaskSetup, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        """One prediction record per example (what `predict` writes)."""
        raise NotImplementedError

    def predicted_classes(self, setup: TaskSetup, split: Split, rows: list[Any]) -> Counter:
        """How often each class was predicted (empty when the task has no classes)."""
        return Counter()


def argmax_rows(rows: Iterable[np.ndarray]) -> list[int]:
    return [int(np.argmax(r)) for r in rows]


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax of one row of logits, computed stably."""
    probs = np.exp(logits - logits.max())
    return probs / probs.sum()


def softmax_records(
    ids: Iterable[str], rows: Iterable[np.ndarray], labels: Sequence[str], key: str = "guid"
) -> list[dict[str, Any]]:
    """{key, label, score}: the best class of each row of logits and its probability."""
    out = []
    for guid, logits in zip(ids, rows, strict=True):
        probs = probabilities(logits)
        best = int(np.argmax(logits))
        out.append({key: guid, "label": labels[best], "score": round(float(probs.max()), 6)})
    return out


def find_file(
    data: Path | None,
    given: str | Path | None,
    candidates: Sequence[str],
    split: str,
    hint: str = "",
) -> Path:
    """The `split` file: `given` (a name in `data`, or a path), else the first of the
    `candidates` (names or globs, best first) found in `data`. Other files that also match
    (a subset beside the full file) are named in a warning, with the option that picks one."""
    flag = f"--{split}-file"
    if given is not None:
        for path in ([data / given] if data is not None else []) + [Path(given)]:
            if path.is_file():
                return path.resolve()
        where = data / given if data is not None else Path(given)
        raise DataError(f"{split} file '{where}' does not exist; check {flag}{hint}")
    if data is None:
        raise ConfigError(f"no {split} file: pass --data DIR or {flag} PATH")
    if not data.is_dir():
        raise DataError(f"data folder '{data}' does not exist; check --data")
    found = list(dict.fromkeys(p for c in candidates for p in sorted(data.glob(c)) if p.is_file()))
    if not found:
        names = " or ".join(candidates)
        raise DataError(f"no {split} file ({names}) in '{data}'; pass {flag} NAME{hint}")
    chosen = found[0]
    twins = {chosen.name, chosen.name + ".gz", chosen.name.removesuffix(".gz")}
    others = [p.name for p in found[1:] if p.name not in twins]
    if others:
        logger.warning(
            "%s file: using %s; %s also look like one (choose with %s NAME)",
            split, chosen.name, ", ".join(others), flag,
        )  # fmt: skip
    return chosen.resolve()
