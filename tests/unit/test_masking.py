"""Masking: rates, 80/10/10, specials, whole words (WordPiece, BPE, word ids), spans, n-grams,
exactness, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bertforge.errors import ConfigError
from bertforge.objectives import IGNORE_INDEX, Masker, MaskingConfig, MaskingVocab, example_rng
from bertforge.tokenization import Tokenizer

PAD, UNK, CLS, SEP, MASK = range(5)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
N_WORDS = 400  # word-initial pieces, then as many continuation pieces


def wordpiece_vocab() -> MaskingVocab:
    tokens = SPECIALS + [f"w{i}" for i in range(N_WORDS)] + [f"##p{i}" for i in range(N_WORDS)]
    return MaskingVocab.from_tokens(
        tokens, special_ids=range(5), pad_id=PAD, mask_id=MASK, scheme="wordpiece"
    )


def marked_vocab(scheme: str) -> MaskingVocab:
    """Byte-level BPE (`Ġ`) or SentencePiece (`▁`): the marker opens a word."""
    marker = {"bpe": "Ġ", "unigram": "\u2581"}[scheme]
    tokens = (
        SPECIALS + [f"{marker}w{i}" for i in range(N_WORDS)] + [f"p{i}" for i in range(N_WORDS)]
    )
    return MaskingVocab.from_tokens(
        tokens, special_ids=range(5), pad_id=PAD, mask_id=MASK, scheme=scheme
    )


def random_words(rng: np.random.Generator, n_tokens: int, max_pieces: int = 1) -> np.ndarray:
    """(n_tokens,) ids: words of 1..max_pieces pieces (a start id, then continuation ids)."""
    lengths = rng.integers(1, max_pieces + 1, n_tokens)
    first = np.cumsum(lengths) - lengths
    starts = np.zeros(n_tokens, dtype=bool)
    starts[first[first < n_tokens]] = True
    return np.where(starts, 5, 5 + N_WORDS) + rng.integers(0, N_WORDS, n_tokens)


def pair(rng: np.random.Generator, n: int, pad: int = 0, max_pieces: int = 1) -> np.ndarray:
    """[CLS] A [SEP] B [SEP] [PAD]*pad with n maskable tokens."""
    a, b = random_words(rng, n // 2, max_pieces), random_words(rng, n - n // 2, max_pieces)
    return np.concatenate([[CLS], a, [SEP], b, [SEP], [PAD] * pad]).astype(np.int64)


def word_groups(tokens: np.ndarray, vocab: MaskingVocab) -> list[list[int]]:
    """Reference segmentation, one token at a time."""
    groups: list[list[int]] = []
    for i, t in enumerate(tokens.tolist()):
        if vocab.is_special[t]:
            continue
        if groups and vocab.is_continuation[t] and groups[-1][-1] == i - 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def run(masker: Masker, seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    outs = [masker(s, example_rng(0, 0, i)) for i, s in enumerate(seqs)]
    tokens = np.concatenate(seqs)
    return tokens, np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


@pytest.mark.parametrize("mode", ["token", "whole_word", "span", "ngram"])
def test_rates_over_a_million_tokens(mode: str) -> None:
    vocab = wordpiece_vocab()
    rng = np.random.default_rng(1)
    seqs = [pair(rng, 500, pad=7, max_pieces=3) for _ in range(2000)]  # 1M maskable tokens
    tokens, inputs, labels = run(Masker(MaskingConfig(mode=mode), vocab), seqs)
    special = vocab.is_special[tokens]
    assert (labels[special] == IGNORE_INDEX).all() and (inputs[special] == tokens[special]).all()
    selected = labels != IGNORE_INDEX
    assert (labels[selected] == tokens[selected]).all()
    assert abs(selected.sum() / (~special).sum() - 0.15) < 0.01
    shown = inputs[selected]
    assert abs((shown == MASK).mean() - 0.8) < 0.01
    assert abs((shown == tokens[selected]).mean() - 0.1) < 0.01  # random may hit the original
    random = shown[(shown != MASK) & (shown != tokens[selected])]
    assert random.size > 0 and not vocab.is_special[random].any()
    assert abs(random.size / selected.sum() - 0.1) < 0.01


@pytest.mark.parametrize("scheme", ["wordpiece", "bpe", "unigram"])
@pytest.mark.parametrize("mode", ["whole_word", "span", "ngram"])
def test_whole_words_are_masked_together(scheme: str, mode: str) -> None:
    vocab = wordpiece_vocab() if scheme == "wordpiece" else marked_vocab(scheme)
    masker = Masker(MaskingConfig(mode=mode, rate=0.3), vocab)
    rng = np.random.default_rng(2)
    for i in range(200):
        seq = pair(rng, 60, pad=3, max_pieces=4)
        if scheme != "wordpiece":
            # Same word structure: start ids get the marked form, continuations the bare form.
            assert (vocab.is_continuation[seq] == wordpiece_vocab().is_continuation[seq]).all()
        chosen = set(masker.select(seq, example_rng(0, 0, i)).positions.tolist())
        for group in word_groups(seq, vocab):
            assert {p in chosen for p in group} in ({True}, {False}), (seq, group, chosen)


def test_word_ids_define_the_words() -> None:
    vocab = wordpiece_vocab()
    masker = Masker(MaskingConfig(mode="whole_word", rate=0.3), vocab)
    rng = np.random.default_rng(3)
    for i in range(200):
        tokens = pair(rng, 40)  # all single-piece in the vocabulary...
        maskable = ~vocab.is_special[tokens]
        # ...but grouped by word ids (a word never spans a special token).
        new_word = (rng.random(tokens.size) < 0.4) | ~maskable | np.r_[False, ~maskable[:-1]]
        word_ids = np.cumsum(new_word)
        chosen = masker.select(tokens, example_rng(0, 0, i), word_ids).positions
        assert chosen.size
        for w in np.unique(word_ids[chosen]):
            assert set(chosen[word_ids[chosen] == w]) == set(
                np.flatnonzero((word_ids == w) & maskable)
            )


def test_minilm_wordpiece_tables(minilm_path: Path) -> None:
    tok = Tokenizer.from_pretrained(minilm_path)
    vocab = MaskingVocab.from_tokenizer(tok)
    assert vocab.mask_id == tok.mask_token_id and vocab.pad_id == tok.pad_token_id
    assert vocab.is_special[sorted(tok.special_ids)].all() and vocab.random_ids.size > 30000
    ids = np.array(tok.encode("unbelievably tokenized words", "hyperparameterized"))
    pieces = tok.convert_ids_to_tokens(ids.tolist())
    assert vocab.is_continuation[ids].tolist() == [p.startswith("##") for p in pieces]
    masker = Masker(MaskingConfig(mode="whole_word", rate=0.5), vocab)
    for i in range(50):
        chosen = set(masker.select(ids, example_rng(0, 0, i)).positions.tolist())
        for group in word_groups(ids, vocab):
            assert {p in chosen for p in group} in ({True}, {False})


def test_span_lengths_follow_the_truncated_geometric_law() -> None:
    config = MaskingConfig(mode="span")
    masker = Masker(config, wordpiece_vocab())
    rng = np.random.default_rng(4)
    runs: list[np.ndarray] = []
    for i in range(2000):
        seq = np.concatenate([[CLS], random_words(rng, 500), [SEP]])  # one word per token
        chosen = np.zeros(seq.size + 1, dtype=bool)
        chosen[masker.select(seq, example_rng(0, 0, i)).positions] = True
        # Spans are never adjacent, so each run of selected tokens is one span.
        edges = np.flatnonzero(np.diff(np.concatenate([[False], chosen]).astype(int)))
        runs.append(edges[1::2] - edges[::2])
    lengths = np.concatenate(runs)
    assert lengths.size > 30000 and lengths.max() <= config.max_span
    empirical = np.bincount(lengths, minlength=config.max_span + 1)[1:] / lengths.size
    assert 0.5 * np.abs(empirical - config.span_pmf()).sum() < 0.02


def test_ngram_lengths_follow_the_inverse_law() -> None:
    config = MaskingConfig(mode="ngram")
    masker = Masker(config, wordpiece_vocab())
    rng = np.random.default_rng(9)
    lengths = []
    for i in range(2400):
        seq = np.concatenate([[CLS], random_words(rng, 500), [SEP]])  # one word per token
        groups = masker.select(seq, example_rng(0, 0, i)).groups
        assert groups is not None
        lengths.append(np.bincount(groups))  # tokens = words per n-gram
    n = np.concatenate(lengths)
    assert n.size >= 100_000 and n.min() >= 1 and n.max() <= config.max_ngram
    empirical = np.bincount(n, minlength=config.max_ngram + 1)[1:] / n.size
    law = 1 / np.arange(1, config.max_ngram + 1)
    assert np.abs(empirical - law / law.sum()).max() < 0.005


def test_ngrams_are_runs_of_whole_words() -> None:
    vocab = wordpiece_vocab()
    masker = Masker(MaskingConfig(mode="ngram", rate=0.3), vocab)
    rng = np.random.default_rng(10)
    for i in range(200):
        seq = pair(rng, 60, pad=3, max_pieces=4)
        words = word_groups(seq, vocab)
        word_of = {p: w for w, group in enumerate(words) for p in group}
        sel = masker.select(seq, example_rng(0, 0, i))
        assert sel.groups is not None and sel.positions.size
        for g in np.unique(sel.groups):
            members = sel.positions[sel.groups == g]
            taken = sorted({word_of[p] for p in members.tolist()})
            # 1..3 consecutive words, every piece of each.
            assert 1 <= len(taken) <= 3 and taken == list(range(taken[0], taken[-1] + 1))
            assert set(members.tolist()) == {p for w in taken for p in words[w]}


def test_exact_counts() -> None:
    vocab = wordpiece_vocab()
    rng = np.random.default_rng(5)
    token, word, span, ngram = (
        Masker(MaskingConfig(mode=m, exact=True), vocab)
        for m in ("token", "whole_word", "span", "ngram")
    )
    word_hits = span_hits = ngram_hits = 0
    for i, n in enumerate(rng.integers(4, 300, 300).tolist()):
        seq = pair(rng, n, pad=n % 5, max_pieces=3)
        k = round(0.15 * n)
        assert token.select(seq, example_rng(0, 0, i)).positions.size == k
        got = word.select(seq, example_rng(0, 0, i)).positions.size
        assert got <= k
        word_hits += got == k
        # Span and ngram mode are exact in words: round(rate * W) words, whole words only.
        first_pieces = {g[0] for g in word_groups(seq, vocab)}
        budget = round(0.15 * len(first_pieces))
        covered = set(span.select(seq, example_rng(0, 0, i)).positions.tolist())
        assert len(first_pieces & covered) <= budget
        span_hits += len(first_pieces & covered) == budget
        covered = set(ngram.select(seq, example_rng(0, 0, i)).positions.tolist())
        assert len(first_pieces & covered) <= budget
        ngram_hits += len(first_pieces & covered) == budget
    # Single-piece words almost always fill the whole-word gap; spans fit but in tiny inputs.
    assert word_hits > 0.95 * 300 and span_hits > 0.95 * 300 and ngram_hits > 0.95 * 300


@pytest.mark.parametrize("mode", ["token", "ngram"])
def test_determinism_by_seed_epoch_index(mode: str) -> None:
    masker = Masker(MaskingConfig(mode=mode), wordpiece_vocab())
    seq = pair(np.random.default_rng(6), 200, max_pieces=3)
    a = masker(seq, example_rng(7, 3, 11))
    assert all((x == y).all() for x, y in zip(a, masker(seq, example_rng(7, 3, 11)), strict=True))
    for other in (example_rng(7, 4, 11), example_rng(7, 3, 12), example_rng(8, 3, 11)):
        assert not (masker(seq, other)[1] == a[1]).all()


def test_knowledge_masking_mixes_whole_units_and_single_tokens() -> None:
    """ERNIE: per sequence, whole units (entities, words) with knowledge_prob, else tokens."""
    vocab = wordpiece_vocab()
    masker = Masker(MaskingConfig(mode="knowledge", rate=0.3, knowledge_prob=0.4), vocab)
    rng = np.random.default_rng(5)
    by_units = 0
    n = 2000
    for i in range(n):
        tokens = pair(rng, 40)
        maskable = ~vocab.is_special[tokens]
        units = np.cumsum(
            (rng.random(tokens.size) < 0.3) | ~maskable | np.r_[False, ~maskable[:-1]]
        )
        chosen = masker.select(tokens, example_rng(0, 0, i), None, units).positions
        whole = all(
            set(chosen[units[chosen] == u]) == set(np.flatnonzero((units == u) & maskable))
            for u in np.unique(units[chosen])
        )
        by_units += whole
    # Token-level sequences almost never pick only whole multi-token units by chance.
    assert abs(by_units / n - 0.4) < 0.05, by_units / n
    everything = Masker(MaskingConfig(mode="knowledge", knowledge_prob=1.0), vocab)
    tokens = np.array([CLS, 5, 6, 7, 8, SEP])
    chosen = everything.select(
        tokens, example_rng(0, 0, 1), np.arange(6), np.array([0, 1, 1, 1, 1, 2])
    )
    assert chosen.positions.tolist() in ([], [1, 2, 3, 4])  # the one unit, whole or not at all
    with pytest.raises(ConfigError, match="knowledge masking needs words"):
        everything.select(tokens, example_rng(0, 0, 1))


def test_no_maskable_tokens() -> None:
    inputs, labels = Masker(MaskingConfig(mode="span"), wordpiece_vocab())(
        np.array([CLS, SEP, PAD]), example_rng(0, 0, 0)
    )
    assert inputs.tolist() == [CLS, SEP, PAD] and (labels == IGNORE_INDEX).all()


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "bogus"},
        {"rate": 0.0},
        {"mask_prob": 0.95, "random_prob": 0.1},
        {"max_span": 0},
        {"max_ngram": 0},
        {"knowledge_prob": 1.5},
    ],
)
def test_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MaskingConfig(**bad)  # type: ignore[arg-type]
