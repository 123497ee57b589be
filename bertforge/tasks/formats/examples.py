"""Sentence(-pair) classification/regression examples and their model features."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertforge.textio import read_text
from bertforge.tokenization import Tokenizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    """One input: a text or a text pair, its label (class id, float score, or None if unlabelled)
    and a `guid` saying where it came from."""

    text_a: str
    text_b: str | None
    label: int | float | None
    guid: str


def tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, fields) for each non-blank line, split on tab with no quoting.

    GLUE sentences contain bare `"`, so the csv module's quoting would merge rows.
    """
    text = read_text(path).removeprefix("\ufeff")  # MRPC starts with a BOM
    empty = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.split("\t")
        elif "\t" in line:  # a row whose every field is empty: not an example, but say so
            empty += 1
    if empty:
        logger.warning("'%s': skipped %d row(s) with every field empty", path, empty)


def encode_examples(
    tokenizer: Tokenizer, examples: Sequence[Example], max_length: int
) -> dict[str, list[Any]]:
    """Tokenize, truncating to `max_length` (longest text first), without padding.

    Returns input_ids, token_type_ids, attention_mask and, when the examples are labelled,
    labels (int class ids or float scores). Logs how many examples were truncated.
    """
    if not examples:
        return {"input_ids": [], "token_type_ids": [], "attention_mask": []}
    texts = [e.text_a for e in examples]
    paired = examples[0].text_b is not None
    if any((e.text_b is not None) != paired for e in examples):
        raise ValueError("examples mix single texts and text pairs; encode them separately")
    pairs = [e.text_b or "" for e in examples] if paired else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    features: dict[str, list[Any]] = {
        key: enc[key] for key in ("input_ids", "token_type_ids", "attention_mask")
    }
    _log_truncation(tokenizer, texts, pairs, features["input_ids"], max_length)
    labels = [e.label for e in examples]
    if all(label is not None for label in labels):
        features["labels"] = labels
    elif any(label is not None for label in labels):
        raise ValueError("some examples have labels and some do not; encode them separately")
    return features


def _log_truncation(
    tokenizer: Tokenizer,
    texts: list[str],
    pairs: list[str] | None,
    ids: list[list[int]],
    max_length: int,
) -> None:
    # Only rows that hit max_length can have been cut; re-encode just those one token longer to
    # tell "cut" from "fit exactly", far cheaper than encoding everything twice.
    full = [i for i, row in enumerate(ids) if len(row) == max_length]
    if not full:
        return
    again = tokenizer(
        [texts[i] for i in full],
        [pairs[i] for i in full] if pairs is not None else None,
        truncation=True,
        max_length=max_length + 1,
    )["input_ids"]
    truncated = sum(len(row) > max_length for row in again)
    if truncated:
        logger.warning(
            "%d of %d examples were longer than max_length=%d tokens and were truncated",
            truncated,
            len(ids),
            max_length,
        )
