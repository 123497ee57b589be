"""Worker side of `build_data`: sentence splitting and batch tokenization, chunk by chunk.

Documents are grouped into chunks (at most `CHUNK_CHARS` characters / `CHUNK_DOCS` documents;
the grouping never depends on the worker count). Each chunk is one task; results come back in
chunk order with at most 2 * workers chunks in flight, so memory does not grow with the corpus.

With a word segmenter, each token also gets its word-start flag, packed above its id
(`shards.pack_flags`), so that the instance code carries flags along without knowing them.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import re
import sys
from collections import deque
from collections.abc import Iterator
from itertools import chain
from typing import Any

import numpy as np
from tokenizers import Tokenizer as BackendTokenizer

from bertforge.data.readers import ReadStats, take_marks
from bertforge.data.sentences import split_sentences
from bertforge.data.shards import UNIT_START, WORD_START, pack_flags
from bertforge.tokenization.segmenters import (
    Lexicon,
    Segmenter,
    knowledge_spans,
    unit_starts,
    word_spans,
)

CHUNK_CHARS = 1 << 18  # characters of text per task
CHUNK_DOCS = 512  # documents per task at most

Result = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# BertNormalizer's clean_text on ASCII: tab/newline/CR become spaces, other controls go.
_CLEAN_ASCII = str.maketrans({**{c: None for c in (*range(32), 127)}, 9: 32, 10: 32, 13: 32})


class SentenceEncoder:
    """Token ids of sentences (no special tokens), exactly as the `tokenizers` backend gives.

    ASCII fast path, taken only for BERT's `BertNormalizer`: on ASCII text that normalizer
    just removes control characters and lowercases (accent stripping and CJK spacing do
    nothing), so `str.translate` / `str.lower` do it in C and a copy of the backend without a
    normalizer encodes the result, about 35% faster on English with identical ids (tested).
    Sentences holding an added token that is matched before normalization (a literal
    "[SEP]") take the normal path.
    """

    def __init__(
        self,
        backend: Any,
        segmenter: Segmenter | None = None,
        lexicon: Lexicon | None = None,
        marked: bool = False,
    ) -> None:
        self.backend = backend
        self.segmenter, self.lexicon = segmenter, lexicon
        self.marked = marked  # sentences carry entity marks (JSONL entity spans)
        self.plain: Any = None
        spec = json.loads(backend.to_str())
        norm = spec.get("normalizer") or {}
        if norm.get("type") != "BertNormalizer" or segmenter is not None:
            return
        self.plain = BackendTokenizer.from_str(backend.to_str())
        self.plain.normalizer = None
        self.clean, self.lower = norm.get("clean_text", True), norm.get("lowercase", True)
        raw = [t["content"] for t in spec.get("added_tokens", []) if not t.get("normalized")]
        # A substring test per first character ("[" for BERT) rules most sentences out fast.
        self.raw_first = sorted({t[0] for t in raw if t})
        self.raw = re.compile("|".join(map(re.escape, raw))) if raw else None

    def encode(self, sentences: list[str]) -> list[Any]:
        """Ids per sentence; with a segmenter, int64 arrays with the word-start flags packed."""
        if self.segmenter is not None:
            plain = [take_marks(s) if self.marked else (s, []) for s in sentences]
            encodings = self._offsets([text for text, _ in plain])
            return [self._segmented(*p, e) for p, e in zip(plain, encodings, strict=True)]
        if self.plain is None:
            return [e.ids for e in self._batch(self.backend, sentences)]
        fast_at, fast, slow_at, slow = [], [], [], []
        for i, s in enumerate(sentences):
            if s.isascii() and not (
                self.raw and any(c in s for c in self.raw_first) and self.raw.search(s)
            ):
                if self.clean and _CONTROL.search(s):
                    s = s.translate(_CLEAN_ASCII)
                fast_at.append(i)
                fast.append(s.lower() if self.lower else s)
            else:
                slow_at.append(i)
                slow.append(s)
        out: list[list[int]] = [[]] * len(sentences)
        for at, encodings in ((fast_at, self._batch(self.plain, fast)),
                              (slow_at, self._batch(self.backend, slow))):  # fmt: skip
            for i, e in zip(at, encodings, strict=True):
                out[i] = e.ids
        return out

    def _offsets(self, sentences: list[str]) -> list[Any]:
        return self.backend.encode_batch(sentences, add_special_tokens=False) if sentences else []

    def _segmented(
        self, sentence: str, marked: list[tuple[int, int]], encoding: Any
    ) -> np.ndarray:  # (N,) int64
        """Ids with flags: where words start, and (with entities: `marked` spans, lexicon
        matches) where the units of knowledge masking start: entities whole, the words
        outside them."""
        assert self.segmenter is not None
        words = word_spans(sentence, self.segmenter(sentence), self.segmenter.name)
        flags = unit_starts(words, encoding.offsets) * WORD_START
        if self.lexicon is not None or self.marked:
            found = self.lexicon.find(sentence) if self.lexicon is not None else []
            # Marked spans first; a lexicon match overlapping one gives way.
            free = [f for f in found if all(f[1] <= s or e <= f[0] for s, e in marked)]
            entities = sorted(marked + free)
            units = knowledge_spans(words, entities)
            flags |= unit_starts(units, encoding.offsets) * UNIT_START
        return pack_flags(np.asarray(encoding.ids, dtype=np.int64), flags)

    @staticmethod
    def _batch(backend: Any, sentences: list[str]) -> list[Any]:
        return backend.encode_batch_fast(sentences, add_special_tokens=False) if sentences else []


_worker: dict[str, Any] = {}


def _init_worker(encoder: SentenceEncoder, piece_len: int, threads: bool) -> None:
    """Sentences longer than `piece_len` tokens are cut into pieces."""
    if not threads:  # one process per core already; the tokenizer's own threads would contend
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker.update(encoder=encoder, piece_len=piece_len)


def tokenize_chunk(docs: list[list[str]]) -> Result:
    """Split and tokenize one chunk of documents (in a worker).

    Returns ids (T,) int32 (int64 with packed word-start flags under a segmenter), piece
    lengths (P,) int32 (sentences of at most `piece_len` tokens, longer ones cut into
    near-equal pieces, empty ones dropped), and per document its number of pieces (D,) and of
    non-empty sentences (D,).
    """
    sentences: list[str] = []
    per_doc = np.zeros(len(docs) + 1, dtype=np.int64)
    for d, doc in enumerate(docs):
        for paragraph in doc:
            sentences += split_sentences(paragraph)
        per_doc[d + 1] = len(sentences)
    encoder = _worker["encoder"]
    encoded = encoder.encode(sentences)
    lens = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    if encoder.segmenter is None:
        ids = np.fromiter(chain.from_iterable(encoded), dtype=np.int32, count=int(lens.sum()))
    else:  # int64 arrays, flags packed
        ids = np.concatenate(encoded) if encoded else np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(docs)), np.diff(per_doc))  # document of each sentence
    keep = lens > 0
    lens, owner = lens[keep], owner[keep]
    parts = -(-lens // _worker["piece_len"])  # pieces per sentence (ceil)
    first = np.repeat(np.cumsum(parts) - parts, parts)
    rank = np.arange(int(parts.sum())) - first  # index of each piece within its sentence
    big, n = np.repeat(lens, parts), np.repeat(parts, parts)
    pieces = (big // n + (rank < big % n)).astype(np.int32)
    doc_pieces = np.bincount(np.repeat(owner, parts), minlength=len(docs))
    doc_sentences = np.bincount(owner, minlength=len(docs))
    return ids, pieces, doc_pieces, doc_sentences


@contextlib.contextmanager
def worker_pool(workers: int, encoder: SentenceEncoder, piece_len: int) -> Iterator[Any]:
    """A process pool, or None to tokenize in this process (workers 0 or 1)."""
    if workers <= 1:
        _init_worker(encoder, piece_len, True)
        yield None
        return
    # fork: workers start in milliseconds instead of re-importing torch. Call this before any
    # thread starts in this process (e.g. the progress bar's).
    ctx = mp.get_context("fork" if sys.platform == "linux" else None)
    with ctx.Pool(workers, _init_worker, (encoder, piece_len, False)) as pool:
        yield pool


def results(chunks: Iterator[list[list[str]]], pool: Any, workers: int) -> Iterator[Result]:
    """`tokenize_chunk` over `chunks` in order, with at most 2 * workers chunks in flight."""
    if pool is None:
        yield from map(tokenize_chunk, chunks)
        return
    pending: deque[Any] = deque()
    for chunk in chunks:
        pending.append(pool.apply_async(tokenize_chunk, (chunk,)))
        if len(pending) >= 2 * workers:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def chunked(docs: Iterator[list[str]], stats: ReadStats, cuts: deque) -> Iterator[list[list[str]]]:
    """Groups of documents; `cuts` gets (documents, bytes read so far) for each group."""
    chunk: list[list[str]] = []
    chars = 0
    for doc in docs:
        chunk.append(doc)
        chars += sum(map(len, doc))
        if chars >= CHUNK_CHARS or len(chunk) >= CHUNK_DOCS:
            cuts.append((len(chunk), stats.bytes))
            yield chunk
            chunk, chars = [], 0
    if chunk:
        cuts.append((len(chunk), stats.bytes))
        yield chunk
