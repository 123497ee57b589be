"""`ner`: named entities (any word-level tagging) from CoNLL columns (`word ... TAG`, IOB1 or
IOB2) or one character per line (`字 B-LOC`, strict BIO, as Chinese NER sets ship), scored by
entity-level F1 (seqeval's CoNLL semantics)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bertforge.errors import DataError
from bertforge.objectives import Objective, Tagging
from bertforge.tasks.base import Features, Option, Split, Task, TaskSetup
from bertforge.tasks.formats import (
    Sentence,
    encode_token_examples,
    ner_labels,
    ner_scheme,
    predictions_to_tags,
    read_conll,
)
from bertforge.tasks.formats.conll import DOCSTART
from bertforge.tasks.registry import register_task
from bertforge.tasks.scoring import compute
from bertforge.textio import read_text
from bertforge.tokenization import Tokenizer

# Each layout's usual train and dev file names.
FORMATS = {"conll": ("eng.train", "eng.testa"), "char-bio": ("train.txt", "dev.txt")}


class NERTask(Task):
    name = "ner"
    command = "ner"
    help = "A named-entity tagger; scored by entity-level F1 (seqeval-style)"
    head = "token_classification"
    cache = "tokens"
    unit = "words"
    options = (
        Option(
            "file_format",
            "conll",
            "conll (word ... TAG, IOB1/IOB2) or char-bio (one character per line, BIO).",
            flags=("--format",),
            choices=tuple(FORMATS),
        ),
        Option(
            "stride",
            None,
            "Split sentences longer than --max-length into windows sharing this many tokens "
            "(default: truncate them, with a warning).",
            int,
        ),
    )
    predict_input = (
        "the training format (its tags are ignored), or one sentence a line: "
        "whitespace-separated words (conll), or the characters of the sentence (char-bio)"
    )

    def default_files(self, options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        train, dev = FORMATS[options["file_format"]]
        return {"train": (train,), "dev": (dev,)}

    def setup(
        self, files: dict[str, Path], options: dict[str, Any], max_length: int | None
    ) -> TaskSetup:
        scheme = ner_scheme(options["file_format"])
        # Labels from both splits so a type seen only in dev still has an output.
        sentences = [s for f in files.values() for s in read_conll(f, scheme)]
        metrics = ["entity_f1", "entity_precision", "entity_recall"]
        return self.new_setup(files, options, max_length, metrics, ner_labels(sentences))

    def read(self, setup: TaskSetup, split: str) -> list[Any]:
        return read_conll(setup.files[split], ner_scheme(setup.options["file_format"]))

    def read_inputs(self, setup: TaskSetup, path: Path) -> list[Any]:
        lines = [line for line in read_text(path).splitlines() if line.strip()]
        if not lines:
            raise DataError(f"'{path}' is empty; expected {self.predict_input}")
        tags = set(setup.labels or ())
        rows = [line.split() for line in lines if not line.startswith(DOCSTART)]
        if rows and all(len(r) >= 2 and r[-1] in tags for r in rows):  # the training format
            scheme = ner_scheme(setup.options["file_format"])
            return [
                Sentence(s.words, ["O"] * len(s.words), s.guid) for s in read_conll(path, scheme)
            ]
        return self.examples_from(setup, lines, source=path.name)

    def examples_from(
        self, setup: TaskSetup, values: Sequence[Any], source: str = "input"
    ) -> list[Any]:
        """Sentences as text (split into words, or characters for char-bio runs) or as lists
        of words."""
        chars = setup.options["file_format"] == "char-bio"
        out = []
        for i, value in enumerate(values, 1):
            if isinstance(value, str):
                words = [c for c in value if not c.isspace()] if chars else value.split()
            else:
                words = [str(w) for w in value]
            if not words:
                raise DataError(f"{source}:{i}: an empty sentence; drop it")
            out.append(Sentence(words, ["O"] * len(words), f"{source}:{i}"))
        return out

    def texts(self, examples: Iterable[Sentence]) -> Iterator[str]:
        for s in examples:
            yield " ".join(s.words)

    def encode(
        self, setup: TaskSetup, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        labels = list(setup.labels or [])
        stride = setup.options.get("stride")
        return encode_token_examples(tokenizer, examples, setup.max_length, labels, stride=stride)

    def objectives(self, setup: TaskSetup) -> list[Objective]:
        return [Tagging()]

    def to_rows(self, output: Any, lengths: list[int]) -> list[Any]:
        array = output.float().cpu().numpy()
        return [array[i, :n] for i, n in enumerate(lengths)]

    def tags(self, setup: TaskSetup, split: Split, rows: list[Any]) -> list[list[str]]:
        predictions = [r.argmax(-1).tolist() for r in rows]
        labels = list(setup.labels or [])
        return predictions_to_tags(split.features, predictions, split.examples, labels)

    def score(self, setup: TaskSetup, split: Split, rows: list[Any]) -> dict[str, float]:
        gold = [s.tags for s in split.examples]
        return compute(setup.metrics, self.tags(setup, split, rows), gold)

    def records(self, setup: TaskSetup, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        tags = self.tags(setup, split, rows)
        return [{"words": s.words, "tags": t} for s, t in zip(split.examples, tags, strict=True)]

    def predicted_classes(self, setup: TaskSetup, split: Split, rows: list[Any]) -> Counter:
        return Counter(tag for sentence in self.tags(setup, split, rows) for tag in sentence)


register_task(NERTask())
