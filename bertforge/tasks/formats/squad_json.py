"""SQuAD v1.1/v2.0-format files (also CMRC 2018 and other SQuAD-style sets): reading and checks.

Every answer span is checked against its text. A span that does not point at its text is moved
to the nearest occurrence of the text in the context, or, when the text does not occur, kept
for evaluation only (`start=None`); both are counted in a warning, so no feature is ever built
from a wrong span.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertforge.errors import DataError
from bertforge.textio import read_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """A gold answer; `start` is its character offset in the context, None if not located."""

    text: str
    start: int | None


@dataclass(frozen=True)
class SquadExample:
    """One question on one context, with all of its gold answers (none if unanswerable)."""

    id: str
    title: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    is_impossible: bool = False

    @property
    def train_answer(self) -> Answer | None:
        """The first answer with a verified span: the one training features point at."""
        return next((a for a in self.answers if a.start is not None), None)


def _get(obj: Any, key: str, kind: type, where: str, path: Path) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind):
        raise DataError(
            f"{path}: {where} has no {kind.__name__} {key!r}; is this a SQuAD-format JSON file?"
        )
    return value


def _locate(context: str, text: str, start: int) -> int | None:
    """Offset of the occurrence of `text` nearest to `start`, or None if there is none."""
    found = []
    position = context.find(text)
    while position != -1:
        found.append(position)
        position = context.find(text, position + 1)
    return min(found, key=lambda p: abs(p - start)) if found else None


class _Tally:
    """Counts of answer spans that needed fixing, reported once per file."""

    def __init__(self) -> None:
        self.answers = self.moved = self.lost = 0
        self.first_bad = ""

    def check(self, context: str, text: str, start: int, where: str) -> int | None:
        self.answers += 1
        if text and context[start : start + len(text)] == text:
            return start
        located = _locate(context, text, start) if text else None
        if located is None:
            self.lost += 1
        else:
            self.moved += 1
        self.first_bad = self.first_bad or f"{where} (answer {text!r} at {start})"
        return located

    def report(self, path: Path) -> None:
        if self.moved or self.lost:
            logger.warning(
                "%s: %d of %d answer spans did not match their text: %d moved to the nearest "
                "occurrence, %d not found in the context (used for evaluation only); first: %s",
                path,
                self.moved + self.lost,
                self.answers,
                self.moved,
                self.lost,
                self.first_bad,
            )


def _example(
    qa: Any, title: str, context: str, where: str, tally: _Tally, path: Path, with_answers: bool
) -> SquadExample:
    qid = _get(qa, "id", str, where, path)
    impossible = bool(qa.get("is_impossible", False))
    unlabelled = impossible or (not with_answers and "answers" not in qa)
    gold = [] if unlabelled else _get(qa, "answers", list, where, path)
    answers = []
    for k, answer in enumerate(gold):
        answer_where = f"question {qid!r} answer {k}"
        text = _get(answer, "text", str, answer_where, path)
        start = _get(answer, "answer_start", int, answer_where, path)
        answers.append(Answer(text, tally.check(context, text, start, answer_where)))
    return SquadExample(
        id=qid,
        title=title,
        # Leading spaces only waste the question's token budget.
        question=_get(qa, "question", str, where, path).lstrip(),
        context=context,
        answers=tuple(answers),
        is_impossible=impossible,
    )


def read_squad(path: str | Path, answers_required: bool = True) -> list[SquadExample]:
    """Read a SQuAD-format `.json` or `.json.gz` file (v1.1, or v2.0 with `is_impossible`).

    With `answers_required=False` (questions to predict), a question may leave out "answers".
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"SQuAD file '{path}' does not exist; check the path")
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}"
        raise DataError(f"{path}: invalid JSON at {where}: {e.msg}; fix the file") from None
    tally = _Tally()
    examples = []
    for a, article in enumerate(_get(data, "data", list, "the top level", path)):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for p, paragraph in enumerate(_get(article, "paragraphs", list, f"data[{a}]", path)):
            where = f"data[{a}].paragraphs[{p}]"
            context = _get(paragraph, "context", str, where, path)
            for q, qa in enumerate(_get(paragraph, "qas", list, where, path)):
                where_q = f"{where}.qas[{q}]"
                examples.append(
                    _example(qa, title, context, where_q, tally, path, answers_required)
                )
    if not examples:
        raise DataError(f"'{path}' holds no questions; expected SQuAD-format JSON")
    tally.report(path)
    logger.info("read %d questions from %s", len(examples), path)
    return examples
