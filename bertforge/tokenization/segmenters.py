"""Word segmenters: where words begin in text that does not separate them (Chinese).

Whole-word masking needs words. WordPiece `##`, byte-level BPE `Ġ` and SentencePiece `▁`
mark them inside the vocabulary, but a Chinese WordPiece vocabulary has one token per
character and no mark, so `build-data --segmenter NAME` cuts each sentence into words in its
workers and stores, for every token, whether it starts one (`word_spans`, `unit_starts`).
Names:

- "jieba": the jieba segmenter (`pip install jieba`), precise mode with its HMM for unknown
  words; pure Python, about 0.2 MB/s per core;
- "rjieba": jieba's Rust port (`pip install rjieba`), the same dictionary and HMM, some 40x
  faster (on the shared Chinese Wikipedia text 99.7% of its words are jieba's);
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
from itertools import accumulate
from pathlib import Path

import numpy as np

from bertforge.errors import ConfigError, DataError

SEGMENTERS = ("jieba", "rjieba", "none")


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
    if name == "rjieba":
        try:
            import rjieba
        except ImportError:
            raise ConfigError(
                "segmenter 'rjieba' is not installed; pip install rjieba (or --segmenter jieba)"
            ) from None
        return rjieba.cut
    module, _, attr = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"segmenter {name!r} cannot be loaded: {e}") from None
    if not callable(fn):
        raise ConfigError(f"segmenter {name!r} is not callable")
    return fn


Span = tuple[int, int]  # characters [start, end) of a sentence


def word_spans(text: str, words: Sequence[str], segmenter: str = "") -> list[Span]:
    """Where each of the segmenter's `words` lies in `text` (they must come in order)."""
    if "".join(words) == text:  # jieba's words tile the text: no search needed
        ends = accumulate(map(len, words))
        return [(end - len(w), end) for w, end in zip(words, ends, strict=True)]
    spans, at = [], 0
    for word in words:
        found = text.find(word, at)
        if found < 0:
            raise DataError(
                f"segmenter {segmenter!r} returned {word!r}, which is not in the text after "
                f"character {at} of {text[:80]!r}; a segmenter must return words in order"
            )
        at = found + len(word)
        spans.append((found, at))
    return spans


def unit_starts(spans: Sequence[Span], offsets: Sequence[Span]) -> np.ndarray:
    """(N,) bool: which of N tokens (character `offsets`) begin a unit of `spans` (ordered,
    disjoint). A token belongs to the unit holding its first character and starts one when
    the token before belongs elsewhere; text outside every span is a gap of its own."""
    # Every start and end is a boundary, so units and gaps each get their own index. Ordered
    # disjoint spans give non-decreasing edges (an end may equal the next start), which is
    # all a sorted search needs.
    edges = np.array([x for span in spans for x in span], dtype=np.int64)  # (2W,)
    first = np.array([o[0] for o in offsets], dtype=np.int64)  # (N,)
    unit = np.searchsorted(edges, first, side="right")  # (N,)
    return np.concatenate(([True], unit[1:] != unit[:-1])) if len(first) else np.zeros(0, bool)


class Lexicon:
    """Entities for ERNIE-style knowledge masking: one entry per line of a UTF-8 file,
    matched leftmost-longest and without overlap (`find`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            raw = self.path.read_bytes()
        except OSError as e:
            raise DataError(f"lexicon '{self.path}' cannot be read: {e.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise DataError(
                f"lexicon '{self.path}' is not UTF-8 (line {line}, byte {e.start}); convert it, "
                f"e.g. `iconv -f gbk -t utf-8`"
            ) from None
        entries = {line.strip() for line in text.splitlines()} - {""}
        if not entries:
            raise DataError(f"lexicon '{self.path}' has no entries; one entity per line")
        self.entries = frozenset(entries)
        # Lengths to try at a position, longest first, by its first character.
        by_first: dict[str, set[int]] = {}
        for entry in entries:
            by_first.setdefault(entry[0], set()).add(len(entry))
        self._lengths = {ch: sorted(n, reverse=True) for ch, n in by_first.items()}

    def find(self, text: str) -> list[tuple[int, int]]:
        """Character spans [start, end) of entries in `text`, leftmost-longest first."""
        spans, i = [], 0
        while i < len(text):
            for n in self._lengths.get(text[i], ()):
                if text[i : i + n] in self.entries:
                    spans.append((i, i + n))
                    i += n
                    break
            else:
                i += 1
        return spans


def knowledge_spans(words: Sequence[Span], entities: Sequence[Span]) -> list[Span]:
    """The units of knowledge masking, in order: every entity whole, and the words outside
    entities (of a word an entity cuts, the parts outside it)."""
    units: list[Span] = []
    e = 0
    for start, end in words:
        at = start
        while at < end:
            while e < len(entities) and entities[e][1] <= at:
                e += 1
            if e < len(entities) and entities[e][0] <= at:  # inside entity e
                if not units or units[-1] != entities[e]:
                    units.append(entities[e])
                at = entities[e][1]
            else:
                cut = min(end, entities[e][0]) if e < len(entities) else end
                units.append((at, cut))
                at = cut
    return units
