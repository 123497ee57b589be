"""Turn `__call__` arguments into a padding/truncation plan, with transformers' semantics."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bertforge.errors import TokenizerError

logger = logging.getLogger(__name__)

PADDING = ("longest", "max_length", "do_not_pad")
TRUNCATION = ("longest_first", "only_first", "only_second", "do_not_truncate")
# transformers treats model_max_length above this as "unset".
LARGE_INTEGER = int(1e20)


@functools.cache
def _warn_once(message: str) -> None:
    # Called per batch: once per process is enough to be seen without flooding the log.
    logger.warning(message)


@dataclass(frozen=True)
class Plan:
    """What to configure on the backend for one call."""

    padding: str  # one of PADDING
    truncation: str  # one of TRUNCATION
    max_length: int | None
    pad_to_multiple_of: int | None


def _padding_strategy(padding: bool | str) -> str:
    if padding is True:
        return "longest"
    if padding is False:
        return "do_not_pad"
    if padding not in PADDING:
        raise TokenizerError(f"padding={padding!r} is not one of True, False, {', '.join(PADDING)}")
    return padding


def _truncation_strategy(truncation: bool | str | None) -> str:
    if truncation is True:
        return "longest_first"
    if truncation is None or truncation is False:
        return "do_not_truncate"
    if truncation not in TRUNCATION:
        raise TokenizerError(
            f"truncation={truncation!r} is not one of True, False, {', '.join(TRUNCATION)}"
        )
    return truncation


def resolve_plan(
    padding: bool | str,
    truncation: bool | str | None,
    max_length: int | None,
    pad_to_multiple_of: int | None,
    model_max_length: int,
) -> Plan:
    """Mirror `PreTrainedTokenizerBase._get_padding_truncation_strategies` (transformers 5)."""
    # A bare max_length implies truncation, for compatibility with old transformers.
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"
    pad = _padding_strategy(padding)
    trunc = _truncation_strategy(truncation)
    if padding is True and max_length is not None and trunc == "do_not_truncate":
        _warn_once(
            "max_length is ignored when padding=True and truncation is off; "
            "use padding='max_length' to pad to max_length"
        )
    if max_length is None:
        unset = model_max_length > LARGE_INTEGER
        if pad == "max_length":
            if unset:
                _warn_once("padding='max_length' without any max length set: no padding")
                pad = "do_not_pad"
            else:
                max_length = model_max_length
        if trunc != "do_not_truncate":
            if unset:
                _warn_once("truncation without max_length or model_max_length: no truncation")
                trunc = "do_not_truncate"
            else:
                max_length = model_max_length
    if max_length is not None and max_length <= 0:
        raise TokenizerError(f"max_length must be positive, got {max_length}")
    if (
        trunc != "do_not_truncate"
        and pad != "do_not_pad"
        and pad_to_multiple_of is not None
        and max_length is not None
        and max_length % pad_to_multiple_of != 0
    ):
        raise TokenizerError(
            f"truncation length {max_length} is not a multiple of pad_to_multiple_of "
            f"{pad_to_multiple_of}; pick a max_length that is"
        )
    return Plan(pad, trunc, max_length, pad_to_multiple_of)


def _check_texts(texts: Sequence[object], name: str) -> list[str]:
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TokenizerError(f"{name}[{i}] is a {type(t).__name__}; every item must be a str")
    return list(texts)  # type: ignore[arg-type]


def batch_inputs(text: object, text_pair: object) -> tuple[bool, list[str] | list[tuple[str, str]]]:
    """Validate the inputs; return (is_batched, inputs for `encode_batch`)."""
    if isinstance(text, str):
        if text_pair is None:
            return False, [text]
        if not isinstance(text_pair, str):
            raise TokenizerError(
                f"text is a str, so text_pair must be a str too, not {type(text_pair).__name__}"
            )
        return False, [(text, text_pair)]
    if not isinstance(text, list | tuple):
        hint = "; decode bytes first" if isinstance(text, bytes) else ""
        kind = type(text).__name__
        raise TokenizerError(f"text must be a str or a list of str, not {kind}{hint}")
    texts = _check_texts(text, "text")
    if text_pair is None:
        return True, texts
    if not isinstance(text_pair, list | tuple):
        raise TokenizerError(
            f"text is a list, so text_pair must be a list of the same length, "
            f"not {type(text_pair).__name__}"
        )
    pairs = _check_texts(text_pair, "text_pair")
    if len(pairs) != len(texts):
        raise TokenizerError(
            f"text has {len(texts)} items but text_pair has {len(pairs)}; they must match"
        )
    return True, list(zip(texts, pairs, strict=True))
