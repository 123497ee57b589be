"""Which tokens to predict and what to show in their place: BERT, whole-word, SpanBERT and
ALBERT n-gram masking.

Masking runs in the collator, per example, from a generator seeded by (seed, epoch, index)
(`example_rng`), so an example's masks do not depend on workers, ranks or accumulation.
Everything here is numpy over one sequence; vocabulary lookups go through tables built once per
tokenizer (`MaskingVocab`).

Selection works on *units*: maskable tokens in "token" mode, words in "whole_word", "span" and
"ngram" mode. A word is a maximal run of maskable tokens whose later pieces are continuations
(WordPiece `##x`, byte-level BPE pieces without a leading `Ġ`, or equal entries in an explicit
per-token word-id array). Special tokens and padding are never maskable.

- token / whole_word, `exact=False`: each unit is selected independently with probability
  `rate` (as Hugging Face's collators do), so the expected selected fraction of maskable
  tokens is `rate` whatever the word sizes.
- token / whole_word, `exact=True`: k = round(rate * n_maskable) tokens, as Google's BERT does.
  Units are taken in a random order while they fit in k; whole words that would overshoot
  leave a gap that is filled with single-piece words, so a sequence gets exactly k unless too
  few single-piece words remain (never more than k). In token mode this is always exactly k.
- span (SpanBERT): span lengths in words follow a geometric law (p = `span_p`) truncated to
  1..`max_span` and renormalised, as SpanBERT's sampler. Spans are placed uniformly at random,
  never overlapping and never adjacent (a span's boundary words stay visible, which span
  boundary objectives need). `exact=False` draws m iid spans with E[m] = rate * W / E[length]
  (W words), so lengths follow the law exactly and the masked fraction is `rate` in
  expectation; `exact=True` draws lengths until they cover round(rate * W) words and trims the
  last span, as SpanBERT does.
- ngram (ALBERT, Lan et al. 2020): spans of n = 1..`max_ngram` words with P(n) ∝ 1/n, placed
  and counted exactly as in span mode (only the length law differs).
- knowledge (ERNIE, Sun et al. 2019): per sequence, with probability `knowledge_prob`, whole
  knowledge units (entities from a lexicon, the segmenter's words outside them: the data's
  `unit_ids`, else its `word_ids`) are selected as whole words are; otherwise single tokens
  (ERNIE's character-level masking). ERNIE's reader makes this choice per data file, with a
  probability listed beside each file; here it is per sequence, so it mixes within a batch.

The 80/10/10 replacement is decided per span in span and ngram mode (SpanBERT), per token
otherwise (BERT). One module of some 330 lines: every mode selects units the same way and
shares the budget and replacement code, which splitting would scatter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bertforge.constants import IGNORE_INDEX
from bertforge.errors import ConfigError, TokenizerError

if TYPE_CHECKING:
    from bertforge.tokenization import Tokenizer

MODES = ("token", "whole_word", "span", "ngram", "knowledge")
# Modes that place runs of whole words (`Masker._spans`) rather than picking units one by one.
SPAN_MODES = ("span", "ngram")
# The character that opens a word's first piece, for vocabularies that mark starts, not ends.
WORD_MARKERS = {"bpe": "Ġ", "unigram": "\u2581"}
# A leading stream tag keeps generators apart: numpy's SeedSequence pads entropy with zeros, so
# [seed, epoch] and [seed, epoch, 0] would otherwise give the same stream.
MASKING_STREAM = 2


def example_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one example's masks: a pure function of (seed, epoch, index)."""
    return np.random.default_rng([MASKING_STREAM, seed, epoch, index])


@dataclass(frozen=True)
class MaskingConfig:
    """How many tokens to predict, how they are grouped, and what replaces them."""

    mode: str = "token"  # "token" | "whole_word" | "span" | "ngram" | "knowledge"
    rate: float = 0.15  # fraction of maskable tokens to predict
    mask_prob: float = 0.8  # of the predicted: shown as the mask token
    random_prob: float = 0.1  # of the predicted: shown as a random token (the rest unchanged)
    exact: bool = False  # exact count per sequence (static shapes) instead of a random draw
    span_p: float = 0.2  # geometric parameter of span lengths (SpanBERT)
    max_span: int = 10  # longest span, in words
    max_ngram: int = 3  # longest n-gram, in words (ALBERT)
    static: bool = False  # same masks every epoch (the collator fixes the epoch to 0)
    knowledge_prob: float = 0.5  # knowledge mode: share of sequences masked by whole units

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"masking mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if not 0.0 < self.rate < 1.0:
            raise ConfigError(f"masking rate {self.rate}; use a value in (0, 1), e.g. 0.15")
        if self.mask_prob < 0 or self.random_prob < 0 or self.mask_prob + self.random_prob > 1:
            raise ConfigError(
                f"mask_prob {self.mask_prob} + random_prob {self.random_prob} must be "
                "non-negative and sum to at most 1 (the rest keeps the original token)"
            )
        if not 0.0 < self.span_p <= 1.0 or self.max_span < 1:
            raise ConfigError(
                f"span_p {self.span_p} / max_span {self.max_span}: use 0 < span_p <= 1 "
                "and max_span >= 1"
            )
        if self.max_ngram < 1:
            raise ConfigError(f"max_ngram {self.max_ngram}: use max_ngram >= 1, e.g. 3")
        if not 0.0 <= self.knowledge_prob <= 1.0:
            raise ConfigError(f"knowledge_prob {self.knowledge_prob}; use a value in [0, 1]")

    def span_pmf(self) -> np.ndarray:  # (max_span,): P(length = 1..max_span)
        lengths = np.arange(1, self.max_span + 1)
        weights = self.span_p * (1 - self.span_p) ** (lengths - 1)
        return weights / weights.sum()

    def ngram_pmf(self) -> np.ndarray:  # (max_ngram,): P(n = 1..max_ngram) ∝ 1/n
        weights = 1.0 / np.arange(1, self.max_ngram + 1)
        return weights / weights.sum()

    def length_pmf(self) -> np.ndarray:  # (N,): P(length = 1..N) of the spans this mode places
        return self.ngram_pmf() if self.mode == "ngram" else self.span_pmf()


@dataclass(frozen=True)
class MaskingVocab:
    """Per-id tables, built once per tokenizer, that make masking a few array lookups."""

    pad_id: int
    mask_id: int
    is_special: np.ndarray  # (V,) bool: never selected (padding included)
    is_continuation: np.ndarray  # (V,) bool: a piece that continues the previous word
    random_ids: np.ndarray  # (R,) int64: candidates for random replacement (non-special)

    @classmethod
    def from_tokens(
        cls,
        tokens: Sequence[str],
        *,
        special_ids: Iterable[int],
        pad_id: int,
        mask_id: int,
        scheme: str,
        continuation_prefix: str = "##",
    ) -> MaskingVocab:
        """Tables from the token strings in id order.

        `scheme` "wordpiece": pieces starting with `continuation_prefix` continue a word;
        "bpe" (byte-level) and "unigram" (SentencePiece): pieces *not* starting with the
        word marker (`Ġ`, `▁`) continue a word.
        """
        if scheme == "wordpiece":
            cont = [t.startswith(continuation_prefix) for t in tokens]
        elif scheme in WORD_MARKERS:
            cont = [not t.startswith(WORD_MARKERS[scheme]) for t in tokens]
        else:
            raise ConfigError(f"word scheme {scheme!r}; use 'wordpiece', 'bpe' or 'unigram'")
        is_special = np.zeros(len(tokens), dtype=bool)
        is_special[[*special_ids, pad_id, mask_id]] = True
        # A special token never continues a word: whatever follows it starts one.
        is_continuation = np.array(cont, dtype=bool) & ~is_special
        random_ids = np.flatnonzero(~is_special).astype(np.int64)
        if random_ids.size == 0:
            raise TokenizerError("the vocabulary has no non-special token to mask or sample")
        return cls(pad_id, mask_id, is_special, is_continuation, random_ids)

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> MaskingVocab:
        pad_id, mask_id = tokenizer.pad_token_id, tokenizer.mask_token_id
        if pad_id is None or mask_id is None:
            raise TokenizerError(
                f"masked-LM pretraining needs pad and mask tokens; {tokenizer!r} lacks "
                f"{'pad' if pad_id is None else 'mask'}. Train or load a tokenizer that has both"
            )
        tokens = [""] * tokenizer.vocab_size
        for token, tid in tokenizer.get_vocab().items():
            tokens[tid] = token
        prefix = getattr(tokenizer.backend.model, "continuing_subword_prefix", None) or "##"
        return cls.from_tokens(
            tokens,
            special_ids=tokenizer.special_ids,
            pad_id=pad_id,
            mask_id=mask_id,
            scheme=tokenizer.kind,
            continuation_prefix=prefix,
        )

    @property
    def vocab_size(self) -> int:
        return int(self.is_special.shape[0])


@dataclass(frozen=True)
class Selection:
    """Positions to predict, and the replacement group of each (one draw per group)."""

    positions: np.ndarray  # (K,) int64, ascending
    groups: np.ndarray | None  # (K,) int64 span id per position (span/ngram mode), else None


class Masker:
    """Applies one `MaskingConfig` with one `MaskingVocab`. Holds only numpy: cheap to pickle
    into DataLoader workers."""

    def __init__(self, config: MaskingConfig, vocab: MaskingVocab) -> None:
        self.config = config
        self.vocab = vocab
        self._span_pmf = config.length_pmf()
        self._span_lengths = np.arange(1, self._span_pmf.size + 1)
        self._span_mean = float(self._span_lengths @ self._span_pmf)

    def __call__(
        self,
        tokens: np.ndarray,  # (L,) int
        rng: np.random.Generator,
        word_ids: np.ndarray | None = None,  # (L,) int: tokens with equal ids form one word
    ) -> tuple[np.ndarray, np.ndarray]:  # input_ids (L,) int64, labels (L,) int64
        """Masked input ids and labels (the original id at predicted positions, else -100)."""
        inputs, labels, _ = self.mask(tokens, rng, word_ids)
        return inputs, labels

    def mask(
        self,
        tokens: np.ndarray,  # (L,) int
        rng: np.random.Generator,
        word_ids: np.ndarray | None = None,  # (L,) int: tokens with equal ids form one word
        unit_ids: np.ndarray | None = None,  # (L,) int: knowledge units, the same way
    ) -> tuple[np.ndarray, np.ndarray, Selection]:  # input_ids (L,), labels (L,), selection
        """As `__call__`, plus the `Selection` behind the labels (span boundary targets need
        each position's span)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        sel = self.select(tokens, rng, word_ids, unit_ids)
        pos = sel.positions
        labels = np.full(tokens.shape, IGNORE_INDEX, dtype=np.int64)
        labels[pos] = tokens[pos]
        if sel.groups is None:
            u = rng.random(pos.size)
        else:
            u = rng.random(int(sel.groups.max(initial=-1)) + 1)[sel.groups]
        cfg = self.config
        to_mask = u < cfg.mask_prob
        to_random = (u >= cfg.mask_prob) & (u < cfg.mask_prob + cfg.random_prob)
        inputs = tokens.copy()
        inputs[pos[to_mask]] = self.vocab.mask_id
        draws = rng.integers(0, self.vocab.random_ids.size, int(to_random.sum()))
        inputs[pos[to_random]] = self.vocab.random_ids[draws]
        return inputs, labels, sel

    def select(
        self,
        tokens: np.ndarray,
        rng: np.random.Generator,
        word_ids: np.ndarray | None = None,
        unit_ids: np.ndarray | None = None,
    ) -> Selection:
        """Positions to predict in one sequence (see the module docstring for the law)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        maskable = ~self.vocab.is_special[tokens]
        prev_maskable = np.concatenate([[False], maskable[:-1]])
        if self.config.mode == "knowledge":
            units = unit_ids if unit_ids is not None else word_ids
            if units is None:
                raise ConfigError(
                    "knowledge masking needs words: build the data with --segmenter (and "
                    "--lexicon for entities)"
                )
            # One draw per sequence: whole units, or single tokens (ERNIE's two levels).
            word_ids = units if rng.random() < self.config.knowledge_prob else None
        if self.config.mode == "token" or (self.config.mode == "knowledge" and word_ids is None):
            cont = np.zeros_like(maskable)
        elif word_ids is not None:
            word_ids = np.asarray(word_ids)
            cont = np.concatenate([[False], word_ids[1:] == word_ids[:-1]])
        else:
            cont = self.vocab.is_continuation[tokens]
        starts = maskable & ~(cont & prev_maskable)  # (L,) first piece of each unit
        unit = np.cumsum(starts) - 1  # (L,) unit index at maskable positions
        sizes = np.bincount(unit[maskable], minlength=int(starts.sum()))  # (W,)
        groups = None
        if sizes.size == 0:
            return Selection(np.zeros(0, dtype=np.int64), None)
        if self.config.mode in SPAN_MODES:
            chosen, span_of_unit = self._spans(sizes.size, rng)
        elif self.config.exact:
            chosen = self._exact_units(sizes, round(self.config.rate * int(maskable.sum())), rng)
        else:
            chosen = rng.random(sizes.size) < self.config.rate
        positions = np.flatnonzero(maskable & chosen[np.maximum(unit, 0)])
        if self.config.mode in SPAN_MODES:
            groups = span_of_unit[unit[positions]]
        return Selection(positions, groups)

    @staticmethod
    def _exact_units(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """(W,) bool: random units totalling k tokens (fewer only if single pieces run out)."""
        order = rng.permutation(sizes.size)
        fits = np.cumsum(sizes[order]) <= k  # a prefix: sizes are positive
        chosen = np.zeros(sizes.size, dtype=bool)
        chosen[order[fits]] = True
        short = k - int(sizes[order[fits]].sum())
        if short:
            rest = order[~fits]
            chosen[rest[sizes[rest] == 1][:short]] = True
        return chosen

    def sample_span_lengths(self, n_words: int, rng: np.random.Generator) -> np.ndarray:
        """(m,) span lengths in words, from the mode's length law (`MaskingConfig.length_pmf`),
        for a sequence of `n_words` words (before placement)."""
        cfg = self.config
        if cfg.exact:
            budget = round(cfg.rate * n_words)
            lengths = rng.choice(self._span_lengths, size=budget, p=self._span_pmf)
            covered = np.cumsum(lengths)
            m = int(np.searchsorted(covered, budget)) + 1 if budget else 0
            lengths = lengths[:m]
            if m:
                lengths[-1] -= covered[m - 1] - budget  # trim the last span to the budget
            return lengths
        expected = cfg.rate * n_words / self._span_mean
        # Stochastic rounding keeps E[m] (hence the masked fraction) unbiased for short inputs.
        m = int(expected) + int(rng.random() < expected - int(expected))
        return rng.choice(self._span_lengths, size=m, p=self._span_pmf)

    def _spans(self, n_words: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(W,) bool chosen words and (W,) span id per word (-1 outside spans)."""
        lengths = self.sample_span_lengths(n_words, rng)
        # Spans plus one separating word each must fit: drop trailing spans that do not.
        lengths = lengths[np.cumsum(lengths + 1) <= n_words + 1]
        m = lengths.size
        span_of_word = np.full(n_words, -1, dtype=np.int64)
        if m:
            # Stars and bars: the m spans and the free words in a uniformly random arrangement.
            free = n_words - int(lengths.sum()) - (m - 1)
            slots = np.sort(rng.choice(free + m, size=m, replace=False))
            before = np.cumsum(lengths) - lengths  # words in earlier spans
            starts = slots + before  # each earlier span also brings one gap word
            offsets = np.arange(int(lengths.sum())) - np.repeat(before, lengths)
            span_of_word[np.repeat(starts, lengths) + offsets] = np.repeat(np.arange(m), lengths)
        return span_of_word >= 0, span_of_word
