"""Extractive QA features (question + context windows) and span post-processing.

Windows follow transformers' `run_qa`: `truncation="only_second"` with overflow, where
`doc_stride` is the number of context tokens consecutive windows share.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from bertforge.errors import ConfigError, DataError
from bertforge.tasks.formats.squad_json import SquadExample
from bertforge.tokenization import BatchEncoding, Tokenizer

logger = logging.getLogger(__name__)

CLS_INDEX = 0  # unanswerable-in-this-window target: the first ([CLS]/<s>) token
MODEL_KEYS = ("input_ids", "token_type_ids", "attention_mask")


def _questions(
    tokenizer: Tokenizer, examples: Sequence[SquadExample], limit: int
) -> tuple[list[str], int]:
    """Questions cut to `limit` tokens, so a long question cannot crowd out the context; and
    the token count of the longest."""
    enc = tokenizer(
        [e.question for e in examples], add_special_tokens=False, return_offsets_mapping=True
    )
    questions = []
    cut = longest = 0
    for example, offsets in zip(examples, enc["offset_mapping"], strict=True):
        if len(offsets) > limit:
            cut += 1
            questions.append(example.question[: offsets[limit - 1][1]])
        else:
            questions.append(example.question)
        longest = max(longest, min(len(offsets), limit))
    if cut:
        logger.warning("%d questions were longer than %d tokens and were truncated", cut, limit)
    return questions, longest


def _windows(
    tokenizer: Tokenizer,
    examples: Sequence[SquadExample],
    max_length: int,
    doc_stride: int,
    max_query_length: int,
) -> BatchEncoding:
    questions, longest = _questions(tokenizer, examples, max_query_length)
    room = max_length - longest - tokenizer.num_special_tokens_to_add(pair=True)
    # tokenizers panics (not a Python error) when the overlap is not below the context room.
    if doc_stride >= room:
        raise ConfigError(
            f"doc_stride={doc_stride} must be below the {room} context tokens a window of "
            f"max_length={max_length} holds after a {longest}-token question; lower doc_stride "
            "or max_query_length, or raise max_length"
        )
    return tokenizer(
        questions,
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )


def _context_range(sequence_ids: list[int | None]) -> tuple[int, int] | None:
    """First and last token index of the context in one window."""
    tokens = [i for i, s in enumerate(sequence_ids) if s == 1]
    return (tokens[0], tokens[-1]) if tokens else None


def _span(
    offsets: list[tuple[int, int]], context: tuple[int, int] | None, start: int, end: int
) -> tuple[int, int]:
    """Token positions of characters [start, end) in this window, or CLS if not all inside."""
    if context is None:
        return CLS_INDEX, CLS_INDEX
    first, last = context
    if offsets[first][0] > start or offsets[last][1] < end:
        return CLS_INDEX, CLS_INDEX
    token_start = first
    while token_start <= last and offsets[token_start][0] <= start:
        token_start += 1
    token_end = last
    while token_end >= first and offsets[token_end][1] >= end:
        token_end -= 1
    return token_start - 1, token_end + 1


def encode_train_features(
    tokenizer: Tokenizer,
    examples: Sequence[SquadExample],
    max_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
) -> dict[str, list[Any]]:
    """Training windows with start_positions/end_positions (CLS where the answer is outside
    the window, or the question is unanswerable). Answerable questions whose answer could not
    be located in the context are skipped, with a warning; if that is all of them, a DataError."""
    kept = [e for e in examples if e.is_impossible or e.train_answer is not None]
    if examples and not kept:
        raise DataError(
            f"none of the {len(examples)} training questions has an answer found in its "
            "context: the file's answer texts or answer_start offsets are broken"
        )
    if len(kept) < len(examples):
        logger.warning(
            "skipped %d of %d questions for training: none of their answers could be located "
            "in the context",
            len(examples) - len(kept),
            len(examples),
        )
    enc = _windows(tokenizer, kept, max_length, doc_stride, max_query_length)
    features: dict[str, list[Any]] = {key: enc[key] for key in MODEL_KEYS}
    starts, ends = [], []
    for row, sample in enumerate(enc["overflow_to_sample_mapping"]):
        answer = kept[sample].train_answer
        if answer is None or answer.start is None:
            span = (CLS_INDEX, CLS_INDEX)
        else:
            span = _span(
                enc["offset_mapping"][row],
                _context_range(enc.sequence_ids(row)),
                answer.start,
                answer.start + len(answer.text),
            )
        starts.append(span[0])
        ends.append(span[1])
    features["start_positions"] = starts
    features["end_positions"] = ends
    logger.info("built %d training windows from %d questions", len(starts), len(kept))
    return features


def encode_eval_features(
    tokenizer: Tokenizer,
    examples: Sequence[SquadExample],
    max_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
) -> dict[str, list[Any]]:
    """Evaluation windows plus `example_id` and `offset_mapping` (None outside the context)
    for `postprocess_predictions`."""
    enc = _windows(tokenizer, examples, max_length, doc_stride, max_query_length)
    features: dict[str, list[Any]] = {key: enc[key] for key in MODEL_KEYS}
    features["example_id"] = [examples[s].id for s in enc["overflow_to_sample_mapping"]]
    features["offset_mapping"] = [
        [o if s == 1 else None for o, s in zip(offsets, enc.sequence_ids(row), strict=True)]
        for row, offsets in enumerate(enc["offset_mapping"])
    ]
    return features


def postprocess_predictions(
    examples: Sequence[SquadExample],
    features: dict[str, list[Any]],
    start_logits: Sequence[Sequence[float]],
    end_logits: Sequence[Sequence[float]],
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
    version_2: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> dict[str, str]:
    """Answer text per question id from per-window logits (rows may be padded past the window).

    Scores the `n_best` top starts × `n_best` top ends of every window, skipping spans outside
    the context, ending before they start, or longer than `max_answer_length` tokens; the text
    is cut from the original context by character offsets. With `version_2`, answers "" when
    the best null score (CLS start + end, minimum over windows) beats the best span by more
    than `null_score_diff_threshold`.
    """
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, example_id in enumerate(features["example_id"]):
        rows_of[example_id].append(row)
    predictions = {}
    for example in examples:
        if example.id not in rows_of:
            raise ValueError(f"question {example.id!r} has no features; encode it first")
        best_score, best_text, null_score = -np.inf, "", np.inf
        for row in rows_of[example.id]:
            offsets = features["offset_mapping"][row]
            start = np.asarray(start_logits[row][: len(offsets)], dtype=float)
            end = np.asarray(end_logits[row][: len(offsets)], dtype=float)
            null_score = min(null_score, start[CLS_INDEX] + end[CLS_INDEX])
            top_ends = np.argsort(end)[::-1][:n_best]
            for i in np.argsort(start)[::-1][:n_best]:
                for j in top_ends:
                    if offsets[i] is None or offsets[j] is None:
                        continue
                    if j < i or j - i + 1 > max_answer_length:
                        continue
                    if start[i] + end[j] > best_score:
                        best_score = start[i] + end[j]
                        best_text = example.context[offsets[i][0] : offsets[j][1]]
        if version_2 and null_score - best_score > null_score_diff_threshold:
            best_text = ""
        predictions[example.id] = best_text
    return predictions
