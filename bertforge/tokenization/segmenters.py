"""Word segmenters: where words begin in text that does not separate them (Chinese).

Whole-word masking needs words. WordPiece `##`, byte-level BPE `Ġ` and SentencePiece `▁`
mark them inside the vocabulary, but a Chinese WordPiece vocabulary has one token per
character and no mark, so `build-data --segmenter NAME` cuts each sentence into words in its
workers and stores, for every token, whether it starts one (`word_starts`). Names:

- "jieba": the jieba segmenter (`pip install jieba`), precise mode with its HMM for unknown
  words;
- "none": no segmentation (words come from the tokenizer's own marks);
- "module:function": any importable callable `str -> list[str]`.

A segmenter returns the words of a sentence in order; text it leaves out (spaces) belongs to
no word.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bertforge.errors import ConfigError, DataError

SEGMENTERS = ("jieba", "none")


@dataclass
class Segmenter:
    """A named callable `str -> list[str]`, resolved on first use (so that it pickles into
    worker processes by name, not by value)."""

    name: str
    _fn: Callable[[str], list[str]] | None = field(default=None, repr=False, compare=False)

    def __call__(self, text: str) -> list[str]:
        if self._fn is None:
            self._fn = _resolve(self.name)
        return self._fn(text)

    def __getstate__(self) -> dict[str, object]:
        return {"name": self.name, "_fn": None}

    def check(self) -> None:
        """Fail now, with the fix, if the segmenter cannot be loaded."""
        self._fn = _resolve(self.name)


def get_segmenter(name: str | None) -> Segmenter | None:
    """The segmenter called `name`; None for "none" (or None)."""
    if name in (None, "none"):
        return None
    if name not in SEGMENTERS and ":" not in name:
        raise ConfigError(
            f"segmenter {name!r} is unknown; use {', '.join(SEGMENTERS)} or 'module:function'"
        )
    segmenter = Segmenter(name)
    segmenter.check()
    return segmenter


def _resolve(name: str) -> Callable[[str], list[str]]:
    if name == "jieba":
        try:
            import jieba
        except ImportError:
            raise ConfigError(
                "segmenter 'jieba' is not installed; pip install jieba (or pass --segmenter none)"
            ) from None
        jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter
        return jieba.lcut
    module, _, attr = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"segmenter {name!r} cannot be loaded: {e}") from None
    if not callable(fn):
        raise ConfigError(f"segmenter {name!r} is not callable")
    return fn


def word_starts(
    text: str, offsets: Sequence[tuple[int, int]], words: Sequence[str], segmenter: str = ""
) -> np.ndarray:
    """(N,) bool: which of the N tokens (character `offsets` into `text`) begin a word.

    A token belongs to the word holding its first character; it starts a word when the token
    before it belongs to another one. Text between words (spaces) counts as its own gap, so
    a token there starts a word too.
    """
    lengths = np.array([len(w) for w in words], dtype=np.int64)  # (W,)
    ends = np.empty(len(words), dtype=np.int64)  # (W,) character end of each word
    at = 0
    for i, word in enumerate(words):
        found = text.find(word, at)
        if found < 0:
            raise DataError(
                f"segmenter {segmenter!r} returned {word!r}, which is not in the text after "
                f"character {at} of {text[:80]!r}; a segmenter must return words in order"
            )
        at = ends[i] = found + len(word)
    # Every word start and end is a boundary, so words and the gaps between them each get
    # their own index; a token's index is that of its first character.
    bounds = np.unique(np.concatenate(([0], ends - lengths, ends)))
    first = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))  # (N,)
    unit = np.searchsorted(bounds, first, side="right")  # (N,)
    return np.concatenate(([True], unit[1:] != unit[:-1])) if len(first) else np.zeros(0, bool)
