"""Turn tokenized documents into pretraining instances (segments before special tokens).

Follows google-research/bert `create_pretraining_data.py`, streaming, and with changes that
keep every source token and the label balance: chunks stop *before* the sentence that would
overshoot the target length (google overshoots, then truncates); long sentences are cut into
pieces up front (at most half the pair budget, so any two pieces fit together); a last piece
left alone gets a random next or, as B, the piece before it again (google: always random).

- `nsp` (BERT): A = the first k pieces of a chunk, B = the rest (label 0, IsNext) or, with
  probability 0.5, pieces of *another* document from the reservoir (label 1); the unused
  pieces of the chunk are put back, as google does.
- `sop` (ALBERT): A, B = the two parts of a chunk, swapped with probability 0.5 (label 1).
- `single`: one segment per chunk, within a document (label -1).
- `full-sentences` (RoBERTa): pieces packed up to the full length across documents, with a
  separator token between documents (label -1); `short_seq_prob` does not apply.

Kept whole (some 300 lines): the four modes share the piece cutting and the reservoir, and
the `Instance` they make is read back by the shards beside it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from bertforge.constants import NO_LABEL

OBJECTIVES = ("nsp", "sop", "full-sentences", "single")
PAIR_OBJECTIVES = ("nsp", "sop")
# Random-next segments come from the most recent documents of the same split (never the
# current one): at most this many documents and tokens are kept.
RESERVOIR_DOCS = 1000
RESERVOIR_TOKENS = 4_000_000


@dataclass
class TokenDoc:
    """One tokenized document: flat ids (T,) and piece boundaries (pieces + 1,) into them."""

    doc_id: int
    tokens: np.ndarray
    bounds: list[int]
    sentences: int

    @property
    def pieces(self) -> int:
        return len(self.bounds) - 1

    def span(self, start: int, end: int) -> np.ndarray:
        """Tokens of pieces [start, end)."""
        return self.tokens[self.bounds[start] : self.bounds[end]]


@dataclass
class Draft:
    """An instance before special tokens: segment parts (concatenated in order) and label."""

    a: list[np.ndarray]
    b: list[np.ndarray]
    label: int
    a_doc: int
    b_doc: int  # the document B came from; -1 without a B segment

    @property
    def length(self) -> int:
        return sum(len(p) for p in self.a) + sum(len(p) for p in self.b)


@dataclass
class InstanceCounts:
    """Where instance text came from beyond each source token once (which is always used)."""

    random_next_fallbacks: int = 0  # random next wanted, reservoir empty: IsNext instead
    borrowed_tokens: int = 0  # tokens of random-next B segments (copies of other documents)
    reused_tokens: int = 0  # pieces used a second time, as A before a stranded last piece
    separator_tokens: int = 0  # document separators inside full-sentences packs
    labels: dict[int, int] = field(default_factory=dict)


def _below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n): a third of `randrange`'s cost, bias of order n / 2**53."""
    return int(rng.random() * n)


class Reservoir:
    """Recent documents of one split, bounded by `RESERVOIR_DOCS` and `RESERVOIR_TOKENS`."""

    def __init__(self, max_docs: int = RESERVOIR_DOCS, max_tokens: int = RESERVOIR_TOKENS):
        self._docs: deque[TokenDoc] = deque()
        self._tokens = 0
        self._max_docs, self._max_tokens = max_docs, max_tokens

    def __len__(self) -> int:
        return len(self._docs)

    def add(self, doc: TokenDoc) -> None:
        if doc.pieces == 0:
            return
        # A copy: the caller's tokens are a view into a whole chunk, which must not stay alive.
        self._docs.append(TokenDoc(doc.doc_id, doc.tokens.copy(), doc.bounds, doc.sentences))
        self._tokens += len(doc.tokens)
        while len(self._docs) > 1 and (
            len(self._docs) > self._max_docs or self._tokens > self._max_tokens
        ):
            self._tokens -= len(self._docs.popleft().tokens)

    def pick(self, rng: random.Random) -> TokenDoc | None:
        return self._docs[_below(rng, len(self._docs))] if self._docs else None


class SegmentMaker:
    """NSP / SOP / single instances of one document at a time; see the module docstring."""

    def __init__(self, objective: str, max_tokens: int, short_seq_prob: float) -> None:
        self.objective, self.max_tokens, self.short_seq_prob = objective, max_tokens, short_seq_prob
        self.counts = InstanceCounts()

    def _target(self, rng: random.Random) -> int:
        if rng.random() < self.short_seq_prob:
            return 2 + _below(rng, self.max_tokens - 1)
        return self.max_tokens

    def document(self, doc: TokenDoc, rng: random.Random, reservoir: Reservoir) -> Iterator[Draft]:
        """Instances of `doc` (none from a pair objective if it has < 2 pieces); `reservoir`
        must not hold `doc` itself."""
        lens = [doc.bounds[k + 1] - doc.bounds[k] for k in range(doc.pieces)]
        n, pair = len(lens), self.objective in PAIR_OBJECTIVES
        if pair and n < 2:
            return
        i = 0
        while i < n:
            target = self._target(rng)
            j, length = i + 1, lens[i]
            while j < n and length + lens[j] <= target:
                length, j = length + lens[j], j + 1
            if pair and j == i + 1 and j < n:  # a pair needs two pieces; two always fit
                length, j = length + lens[j], j + 1
            if pair and j == n - 1 and length + lens[j] <= self.max_tokens:
                length, j = length + lens[j], j + 1  # do not strand a lone last piece
            if not pair:
                yield self._emit([doc.span(i, j)], [], NO_LABEL, doc.doc_id, -1)
                i = j
            elif j - i >= 2:
                i = yield from self._chunk(doc, i, j, target, rng, reservoir)
            else:
                yield from self._last_piece(doc, rng, reservoir)
                i = j

    def _chunk(
        self, doc: TokenDoc, i: int, j: int, target: int, rng: random.Random, res: Reservoir
    ) -> Iterator[Draft]:
        """One instance from pieces [i, j) (at least two); returns the next piece to use."""
        cut = i + 1 + _below(rng, j - i - 1)
        a, b = doc.span(i, cut), doc.span(cut, j)
        if self.objective == "sop":
            yield self._ordered(a, b, doc.doc_id, swap=rng.random() < 0.5)
            return j
        if rng.random() < 0.5:
            other = res.pick(rng)
            if other is not None:
                yield self._random_next(a, doc.doc_id, other, target, rng)
                return cut  # the pieces after `cut` start the next chunk
            self.counts.random_next_fallbacks += 1
        yield self._ordered(a, b, doc.doc_id, swap=False)
        return j

    def _last_piece(self, doc: TokenDoc, rng: random.Random, res: Reservoir) -> Iterator[Draft]:
        """The last piece, left alone when random next put it back: it gets a random next or,
        as B, the piece before it once more (google makes it a random next, always)."""
        last = doc.span(doc.pieces - 1, doc.pieces)
        if self.objective == "nsp" and rng.random() < 0.5:
            other = res.pick(rng)
            if other is not None:
                yield self._random_next(last, doc.doc_id, other, self.max_tokens, rng)
                return
            self.counts.random_next_fallbacks += 1
        before = doc.span(doc.pieces - 2, doc.pieces - 1)  # the doc has >= 2 pieces
        self.counts.reused_tokens += len(before)
        swap = self.objective == "sop" and rng.random() < 0.5
        yield self._ordered(before, last, doc.doc_id, swap=swap)

    def _ordered(self, a: np.ndarray, b: np.ndarray, doc_id: int, *, swap: bool) -> Draft:
        """A then B (label 0), or for SOP swapped (label 1)."""
        return (
            self._emit([b], [a], 1, doc_id, doc_id)
            if swap
            else self._emit([a], [b], 0, doc_id, doc_id)
        )

    def _random_next(
        self, a: np.ndarray, doc_id: int, other: TokenDoc, target: int, rng: random.Random
    ) -> Draft:
        # Pieces of `other` from a random start while they fit the rest of the target (at
        # least one), cut to the hard limit.
        budget = max(target - len(a), 1)
        start = _below(rng, other.pieces)
        end = start + 1
        while end < other.pieces and other.bounds[end + 1] - other.bounds[start] <= budget:
            end += 1
        b = other.span(start, end)[: self.max_tokens - len(a)]
        self.counts.borrowed_tokens += len(b)
        return self._emit([a], [b], 1, doc_id, other.doc_id)

    def _emit(
        self, a: list[np.ndarray], b: list[np.ndarray], label: int, a_doc: int, b_doc: int
    ) -> Draft:
        self.counts.labels[label] = self.counts.labels.get(label, 0) + 1
        return Draft(a, b, label, a_doc, b_doc)


class Packer:
    """full-sentences: pieces of consecutive documents packed up to `max_tokens`."""

    def __init__(self, max_tokens: int, separator: int) -> None:
        self.max_tokens = max_tokens
        self._sep = np.array([separator], dtype=np.int32)
        self._parts: list[np.ndarray] = []
        self._length = 0
        self._first_doc = -1
        self.counts = InstanceCounts()

    def add(self, doc: TokenDoc) -> Iterator[Draft]:
        run_start = None  # first piece of this document's current run inside the pack
        for k in range(doc.pieces):
            size = doc.bounds[k + 1] - doc.bounds[k]
            sep = 1 if self._parts and run_start is None else 0
            if self._length + sep + size > self.max_tokens:
                yield from self.finish()
                run_start, sep = None, 0
            if sep:
                self._parts.append(self._sep)
                self.counts.separator_tokens += 1
            if run_start is None:
                run_start = k
                self._parts.append(doc.span(k, k + 1))
                self._first_doc = doc.doc_id if len(self._parts) == 1 else self._first_doc
            else:
                self._parts[-1] = doc.span(run_start, k + 1)
            self._length += sep + size

    def finish(self) -> Iterator[Draft]:
        """The last, partly filled pack (call at the end of the split)."""
        if self._parts:
            self.counts.labels[NO_LABEL] = self.counts.labels.get(NO_LABEL, 0) + 1
            yield Draft(self._parts, [], NO_LABEL, self._first_doc, -1)
        self._parts, self._length = [], 0


class SplitMaker:
    """Instances of one split's documents, in order, handed to `sink`: skips documents with too
    few sentences (2 for pairs), repeats `dupe_factor` times (nsp/sop/single), and keeps the
    random-next reservoir. `max_tokens`: the text budget, specials taken off."""

    def __init__(
        self,
        objective: str,
        max_tokens: int,
        short_seq_prob: float,
        dupe_factor: int,
        separator: int | None,
        sink: Callable[[Draft], None],
    ) -> None:
        self.objective, self.dupe_factor, self.sink = objective, dupe_factor, sink
        self.min_sentences = 2 if objective in PAIR_OBJECTIVES else 1
        self.reservoir = Reservoir()
        self.maker: SegmentMaker | Packer
        if objective == "full-sentences":
            assert separator is not None
            self.maker = Packer(max_tokens, separator)
        else:
            self.maker = SegmentMaker(objective, max_tokens, short_seq_prob)
        self.skipped_short_docs = self.skipped_tokens = self.source_tokens = 0

    def add(self, doc: TokenDoc, rng: random.Random) -> None:
        if doc.sentences < self.min_sentences:
            self.skipped_short_docs += 1
            self.skipped_tokens += len(doc.tokens)
        elif isinstance(self.maker, Packer):
            self.source_tokens += len(doc.tokens)
            for draft in self.maker.add(doc):
                self.sink(draft)
        else:
            self.source_tokens += len(doc.tokens)
            for _ in range(self.dupe_factor):
                for draft in self.maker.document(doc, rng, self.reservoir):
                    self.sink(draft)
        if self.objective == "nsp":
            self.reservoir.add(doc)  # after its own instances: never its own random next

    def finish(self) -> None:
        """Flush a partly filled full-sentences pack (call once, after the last document)."""
        if isinstance(self.maker, Packer):
            for draft in self.maker.finish():
                self.sink(draft)


@dataclass
class Instance:
    """One pretraining example: tokens (L,) int64 with specials, [0, len_a) is segment A with
    its specials, [len_a, len_a + len_b) is B; label 0/1 for NSP/SOP, -1 when none.
    `word_ids` (L,) int64 (equal ids = one word) when the build ran a word segmenter, and
    `unit_ids` (the same for knowledge-masking units) when it also had a lexicon."""

    tokens: np.ndarray
    len_a: int
    len_b: int
    label: int
    word_ids: np.ndarray | None = None
    unit_ids: np.ndarray | None = None

    def token_type_ids(self, b_type: int = 1) -> np.ndarray:
        """(L,) int64: 0 over A, `b_type` over B (the manifest's `layout.segment_b_type`)."""
        types = np.zeros(len(self.tokens), dtype=np.int64)
        types[self.len_a :] = b_type
        return types
