"""What GLUE and `classify` share: a text or text pair -> one class (or one score), through
the family's sequence-classification head."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

from bertforge.errors import DataError
from bertforge.objectives import Classification, Objective
from bertforge.tasks.base import Features, Split, Task, TaskSetup, argmax_rows, softmax_records
from bertforge.tasks.formats import Example, encode_examples
from bertforge.tasks.scoring import compute
from bertforge.tokenization import Tokenizer


class SentenceTask(Task):
    """Classification of a text or text pair; regression when the setup has no labels."""

    head = "sequence_classification"
    cache = "first"

    def label_dtype(self, setup: TaskSetup) -> torch.dtype:
        return torch.float if setup.labels is None else torch.long

    def model_options(self, setup: TaskSetup) -> dict[str, Any]:
        options = super().model_options(setup)
        if setup.labels is None:
            options["problem"] = "regression"
        return options

    def objectives(self, setup: TaskSetup) -> list[Objective]:
        return [Classification("regression" if setup.labels is None else "single_label")]

    def pairs(self, setup: TaskSetup) -> bool:
        """Whether each input is a text pair."""
        raise NotImplementedError

    def examples_from(self, setup: TaskSetup, values: Sequence[Any]) -> list[Any]:
        """Texts, or (text, text) pairs for a pair task."""
        paired = self.pairs(setup)
        out = []
        for i, value in enumerate(values):
            pair = isinstance(value, tuple | list)
            if pair != paired or (pair and len(value) != 2):
                want = "(text, text) pairs" if paired else "texts"
                raise DataError(f"input {i} is {value!r}; this {self.name} run takes {want}")
            a, b = (value[0], value[1]) if pair else (value, None)
            out.append(Example(str(a), None if b is None else str(b), None, f"input-{i}"))
        return out

    def texts(self, examples: Iterable[Example]) -> Iterator[str]:
        for e in examples:
            yield e.text_a
            if e.text_b is not None:
                yield e.text_b

    def encode(
        self, setup: TaskSetup, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        return encode_examples(tokenizer, examples, setup.max_length)

    def predictions(self, setup: TaskSetup, rows: list[Any]) -> list[Any]:
        if setup.labels is None:
            return [float(r.reshape(-1)[0]) for r in rows]
        return argmax_rows(rows)

    def score(self, setup: TaskSetup, split: Split, rows: list[Any]) -> dict[str, float]:
        return compute(setup.metrics, self.predictions(setup, rows), split.features["labels"])

    def records(self, setup: TaskSetup, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        guids = [e.guid for e in split.examples]
        if setup.labels is None:
            scores = self.predictions(setup, rows)
            return [{"guid": g, "score": s} for g, s in zip(guids, scores, strict=True)]
        return softmax_records(guids, rows, setup.labels)

    def predicted_classes(self, setup: TaskSetup, split: Split, rows: list[Any]) -> Counter:
        if setup.labels is None:
            return Counter()
        return Counter(setup.labels[i] for i in argmax_rows(rows))
