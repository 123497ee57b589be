"""`squad`: extractive QA on SQuAD v1.1 / v2.0 JSON, in windows over long contexts, scored by
the official EM/F1 (0-100; v2.0 adds the HasAns/NoAns breakdown)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bertforge.errors import DataError
from bertforge.objectives import Objective, span_objectives
from bertforge.tasks.base import Features, Option, Split, Task, TaskSetup
from bertforge.tasks.formats import (
    SquadExample,
    encode_eval_features,
    encode_train_features,
    postprocess_predictions,
    read_squad,
)
from bertforge.tasks.registry import register_task
from bertforge.tasks.scoring import squad_evaluate
from bertforge.tokenization import Tokenizer

DOC_STRIDE = Option("doc_stride", 128, "Context tokens that consecutive windows share.", int)


class SquadTask(Task):
    name = "squad"
    aliases = ("qa",)
    command = "squad"
    help = "Extractive QA on SQuAD v1.1 or v2.0; scored by the official EM/F1 (0-100)"
    head = "question_answering"
    label_keys = ("start_positions", "end_positions")
    epochs = 2
    max_length = 384
    options = (
        Option(
            "squad_version",
            "1.1",
            "1.1, or 2.0 (unanswerable questions, HasAns/NoAns).",
            choices=("1.1", "2.0"),
        ),
        DOC_STRIDE,
    )
    predict_input = "SQuAD-format JSON; gold answers, if present, are ignored"

    def default_files(self, options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        v = options["squad_version"]
        return {
            split: (f"{split}-v{v}.json", f"{split}-v{v}.json.gz", f"{split}-v{v}*.json*")
            for split in ("train", "dev")
        }

    def missing_hint(self) -> str:
        return " (or --squad-version at the data's version)"

    def setup(
        self, files: dict[str, Path], options: dict[str, Any], max_length: int | None
    ) -> TaskSetup:
        return self.new_setup(files, options, max_length, ["f1", "exact_match"])

    def model_options(self, setup: TaskSetup) -> dict[str, Any]:
        return {}

    def objectives(self, setup: TaskSetup) -> list[Objective]:
        return list(span_objectives())

    def read(self, setup: TaskSetup, split: str) -> list[Any]:
        return read_squad(setup.files[split])

    def read_inputs(self, setup: TaskSetup, path: Path) -> list[Any]:
        return read_squad(path, answers_required=False)

    def examples_from(self, setup: TaskSetup, values: Sequence[Any]) -> list[Any]:
        """{"question": ..., "context": ...} dicts (an "id" is optional)."""
        out = []
        for i, value in enumerate(values):
            if not isinstance(value, Mapping) or not {"question", "context"} <= set(value):
                raise DataError(f"input {i} is {value!r}; pass {{'question': ..., 'context': ...}}")
            qid = str(value.get("id", f"input-{i}"))
            out.append(SquadExample(qid, "", str(value["question"]), str(value["context"]), ()))
        return out

    def texts(self, examples: Iterable[SquadExample]) -> Iterator[str]:
        for e in examples:
            yield e.question
            yield e.context

    def encode(
        self, setup: TaskSetup, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        fn = encode_train_features if train else encode_eval_features
        return fn(tokenizer, examples, setup.max_length, setup.options["doc_stride"])

    def to_rows(self, output: Any, lengths: list[int]) -> list[Any]:
        start, end = (t.float().cpu().numpy() for t in output)
        return [(start[i, :n], end[i, :n]) for i, n in enumerate(lengths)]

    def answers(self, split: Split, rows: list[Any]) -> dict[str, str]:
        # SQuAD v2.0 data (some unanswerable questions) may answer "", as squad_evaluate does.
        version_2 = any(e.is_impossible for e in split.examples)
        starts, ends = [r[0] for r in rows], [r[1] for r in rows]
        return postprocess_predictions(
            split.examples, split.features, starts, ends, version_2=version_2
        )

    def evaluate(self, examples: list[Any], answers: dict[str, str]) -> dict[str, Any]:
        """The official script's scores (v2.0 data adds HasAns_*/NoAns_*)."""
        return squad_evaluate(examples, answers)

    def score(self, setup: TaskSetup, split: Split, rows: list[Any]) -> dict[str, float]:
        result = self.evaluate(split.examples, self.answers(split, rows))
        return {k: v for k, v in result.items() if k not in ("total", "skipped")}

    def records(self, setup: TaskSetup, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        answers = self.answers(split, rows)
        return [{"id": e.id, "answer": answers[e.id]} for e in split.examples]


register_task(SquadTask())
