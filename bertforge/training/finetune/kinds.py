"""One object per kind of fine-tuning task: it reads the data, builds the task model, names
the objectives, and turns model outputs into metrics and prediction records. The loop,
`evaluate` and `predict` are the same for every kind; what differs lives here.

    classification / regression   GLUE TSVs and CSV/TSV/JSONL files -> SequenceClassifier
    ner                           CoNLL-2003 columns                 -> TokenClassifier
    squad                         SQuAD v1.1 / v2.0 JSON             -> QuestionAnswering
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from bertforge import architectures as heads
from bertforge import tasks
from bertforge.errors import DataError
from bertforge.objectives import Classification, Objective, Tagging, span_objectives
from bertforge.tasks.conll import Sentence
from bertforge.textio import read_text
from bertforge.tokenization import Tokenizer
from bertforge.training.finetune import prompt

if TYPE_CHECKING:
    from bertforge.training.finetune.tasks import Features, Split, TaskInfo


class TaskKind:
    """What a fine-tuning run does differently for one kind of task."""

    name: ClassVar[str]
    model: ClassVar[type[heads.TaskModel]]
    label_keys: ClassVar[tuple[str, ...]] = ("labels",)  # batch fields beyond model inputs
    epochs: ClassVar[int] = 3  # default epochs
    max_length: ClassVar[int] = 128  # default tokens per input
    label_dtype: torch.dtype = torch.long  # of scalar labels in a batch
    # `--strategy frozen`: which encoder outputs are cached per row ("first": the [CLS]
    # state, "tokens": every token's); None runs the frozen encoder live.
    cache: ClassVar[str | None] = None

    def model_options(self, info: TaskInfo) -> dict[str, Any]:
        return {"num_labels": info.num_labels, "labels": info.labels}

    def objectives(self, info: TaskInfo) -> list[Objective]:
        raise NotImplementedError

    def read(self, info: TaskInfo, split: str) -> list[Any]:
        """The examples of `split` ("train" or "dev")."""
        raise NotImplementedError

    def read_inputs(self, info: TaskInfo, path: Path) -> list[Any]:
        """Unlabelled examples for `predict`."""
        raise NotImplementedError

    def encode(
        self, info: TaskInfo, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        raise NotImplementedError

    def to_rows(self, output: Any, lengths: list[int]) -> list[Any]:
        """Per-example numpy outputs with padding cut off, in batch order."""
        array = output.float().cpu().numpy()
        return list(array)

    def score(self, info: TaskInfo, split: Split, rows: list[Any]) -> dict[str, float]:
        raise NotImplementedError

    def records(self, info: TaskInfo, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        """One prediction record per example (what `predict` writes)."""
        raise NotImplementedError


class SentenceTask(TaskKind):
    """Classification of a text or text pair, or regression (`regression=True`)."""

    model = heads.SequenceClassifier
    cache = "first"

    def __init__(self, regression: bool) -> None:
        self.regression = regression
        self.name = "regression" if regression else "classification"
        self.label_dtype = torch.float if regression else torch.long

    def model_options(self, info: TaskInfo) -> dict[str, Any]:
        options = super().model_options(info)
        if self.regression:
            options["problem"] = "regression"
        return options

    def objectives(self, info: TaskInfo) -> list[Objective]:
        return [Classification("regression" if self.regression else "single_label")]

    def read(self, info: TaskInfo, split: str) -> list[Any]:
        data = info.data
        if info.source != "custom":
            task = tasks.get_task(info.source)
            return tasks.read_glue(task, data["dir"], "train" if split == "train" else data["dev"])
        return tasks.read_examples(
            data[split],
            data["text_column"],
            data.get("pair_column"),
            data["label_column"],
            labels=info.labels,
            task=self.name,
        ).examples

    def read_inputs(self, info: TaskInfo, path: Path) -> list[Any]:
        if info.source == "custom":
            text, pair = info.data["text_column"], info.data.get("pair_column")
        else:
            spec = tasks.get_task(info.source)
            text, pair = spec.text_a.name, spec.text_b.name if spec.text_b else None
        return tasks.read_examples(path, text, pair, label_column=None).examples

    def encode(
        self, info: TaskInfo, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        if info.prompt is not None:
            examples = prompt.fill(info.prompt, tokenizer, examples)
        return tasks.encode_examples(tokenizer, examples, info.max_length)

    def predictions(self, rows: list[Any]) -> list[Any]:
        if self.regression:
            return [float(r.reshape(-1)[0]) for r in rows]
        return [int(np.argmax(r)) for r in rows]

    def score(self, info: TaskInfo, split: Split, rows: list[Any]) -> dict[str, float]:
        return tasks.compute(info.metrics, self.predictions(rows), split.features["labels"])

    def records(self, info: TaskInfo, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        if self.regression:
            scores = self.predictions(rows)
            return [
                {"guid": e.guid, "score": s} for e, s in zip(split.examples, scores, strict=True)
            ]
        labels = list(info.labels or [])
        out = []
        for example, logits in zip(split.examples, rows, strict=True):
            probs = np.exp(logits - logits.max())
            probs /= probs.sum()
            best = int(np.argmax(logits))
            out.append(
                {"guid": example.guid, "label": labels[best], "score": round(float(probs.max()), 6)}
            )
        return out


class NERTask(TaskKind):
    """Named entities (any word-level tagging) in CoNLL columns, scored by entity F1."""

    name = "ner"
    model = heads.TokenClassifier
    cache = "tokens"

    def objectives(self, info: TaskInfo) -> list[Objective]:
        return [Tagging()]

    def read(self, info: TaskInfo, split: str) -> list[Any]:
        scheme = tasks.ner_scheme(info.data.get("format", "conll"))
        return tasks.read_conll(Path(info.data["dir"]) / info.data[split], scheme)

    def read_inputs(self, info: TaskInfo, path: Path) -> list[Any]:
        """One sentence a line: whitespace-separated words, or characters for char-bio runs."""
        chars = info.data.get("format") == "char-bio"
        lines = [
            [c for c in line if not c.isspace()] if chars else line.split()
            for line in read_text(path).splitlines()
            if line.strip()
        ]
        if not lines:
            raise DataError(f"'{path}' is empty; expected one sentence a line")
        return [Sentence(w, ["O"] * len(w), f"{path.name}:{i}") for i, w in enumerate(lines, 1)]

    def encode(
        self, info: TaskInfo, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        labels = list(info.labels or [])
        return tasks.encode_token_examples(
            tokenizer, examples, info.max_length, labels, stride=info.stride
        )

    def to_rows(self, output: Any, lengths: list[int]) -> list[Any]:
        array = output.float().cpu().numpy()
        return [array[i, :n] for i, n in enumerate(lengths)]

    def tags(self, info: TaskInfo, split: Split, rows: list[Any]) -> list[list[str]]:
        predictions = [r.argmax(-1).tolist() for r in rows]
        labels = list(info.labels or [])
        return tasks.predictions_to_tags(split.features, predictions, split.examples, labels)

    def score(self, info: TaskInfo, split: Split, rows: list[Any]) -> dict[str, float]:
        gold = [s.tags for s in split.examples]
        return tasks.compute(info.metrics, self.tags(info, split, rows), gold)

    def records(self, info: TaskInfo, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        tags = self.tags(info, split, rows)
        return [{"words": s.words, "tags": t} for s, t in zip(split.examples, tags, strict=True)]


class SquadTask(TaskKind):
    """Extractive QA on SQuAD-format JSON: windows over long contexts, official EM/F1."""

    name = "squad"
    model = heads.QuestionAnswering
    label_keys = ("start_positions", "end_positions")
    epochs = 2
    max_length = 384

    def model_options(self, info: TaskInfo) -> dict[str, Any]:
        return {}

    def objectives(self, info: TaskInfo) -> list[Objective]:
        return list(span_objectives())

    def read(self, info: TaskInfo, split: str) -> list[Any]:
        return tasks.read_squad(Path(info.data["dir"]) / info.data[split])

    def read_inputs(self, info: TaskInfo, path: Path) -> list[Any]:
        return tasks.read_squad(path, answers_required=False)

    def encode(
        self, info: TaskInfo, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        fn = tasks.encode_train_features if train else tasks.encode_eval_features
        return fn(tokenizer, examples, info.max_length, info.doc_stride)

    def to_rows(self, output: Any, lengths: list[int]) -> list[Any]:
        start, end = (t.float().cpu().numpy() for t in output)
        return [(start[i, :n], end[i, :n]) for i, n in enumerate(lengths)]

    def answers(self, split: Split, rows: list[Any]) -> dict[str, str]:
        # SQuAD v2.0 data (some unanswerable questions) may answer "", as squad_evaluate does.
        version_2 = any(e.is_impossible for e in split.examples)
        starts, ends = [r[0] for r in rows], [r[1] for r in rows]
        return tasks.postprocess_predictions(
            split.examples, split.features, starts, ends, version_2=version_2
        )

    def score(self, info: TaskInfo, split: Split, rows: list[Any]) -> dict[str, float]:
        answers = self.answers(split, rows)
        if info.source == "cmrc2018":  # Chinese: its own normalisation and character F1
            result = tasks.cmrc_evaluate(split.examples, answers)
        else:  # v2.0 data adds the HasAns_*/NoAns_* breakdown of evaluate-v2.0.py
            result = tasks.squad_evaluate(split.examples, answers)
        return {k: v for k, v in result.items() if k not in ("total", "skipped")}

    def records(self, info: TaskInfo, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        answers = self.answers(split, rows)
        return [{"id": e.id, "answer": answers[e.id]} for e in split.examples]


KINDS: dict[str, TaskKind] = {
    k.name: k for k in (SentenceTask(False), SentenceTask(True), NERTask(), SquadTask())
}
