"""Vocabulary extension: the words of a domain that a tokenizer cuts into the most pieces, added
to it as whole tokens.

A word is what the model sees after normalisation and pre-tokenization (lower-cased for an
uncased WordPiece, `Ġ`-marked for byte-level BPE, `▁`-marked for SentencePiece). The words
chosen are those that save the most tokens on the domain's text: count x (pieces - 1). Each is
added so that its old ids keep their meaning and the model itself, not a pre-pass over raw
text, emits it:

- WordPiece: a vocabulary entry; greedy longest-match takes the whole word first.
- byte-level BPE: a vocabulary entry, with `ignore_merges` set, so a word found whole in the
  vocabulary is emitted as it is before any merge applies.
- SentencePiece Unigram: a piece scored just above the word's best segmentation, so Viterbi
  takes it.

Words that contain no new word keep their segmentation; `changed_words` checks that on the
domain's own words.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer as BackendTokenizer

from bertforge.errors import ConfigError, TokenizerError
from bertforge.textio import iter_lines, resolve_files
from bertforge.tokenization.tokenizer import Tokenizer


@dataclass(frozen=True)
class NewWord:
    token: str  # as the vocabulary holds it
    pieces: tuple[int, ...]  # the ids it was cut into before
    count: int  # occurrences in the domain's text


def words_of(tokenizer: Tokenizer, line: str) -> list[str]:
    """The words of `line` as the tokenizer's model sees them."""
    backend = tokenizer.backend
    if backend.normalizer is not None:
        line = backend.normalizer.normalize_str(line)
    if backend.pre_tokenizer is None:
        return line.split()
    return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(line)]


def count_words(tokenizer: Tokenizer, paths: Sequence[Path]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in resolve_files(paths):
        for line in iter_lines(path):
            counts.update(words_of(tokenizer, line))
    return counts


def pieces_of(tokenizer: Tokenizer, word: str) -> tuple[int, ...]:
    return tuple(t.id for t in tokenizer.backend.model.tokenize(word))


def choose_words(
    tokenizer: Tokenizer, counts: Counter[str], n: int, min_count: int = 2
) -> list[NewWord]:
    """The `n` words seen at least `min_count` times that save the most tokens when whole."""
    unk = tokenizer.unk_token_id
    scored = []
    for word, count in counts.items():
        if count < min_count:
            continue
        pieces = pieces_of(tokenizer, word)
        if len(pieces) < 2 or unk in pieces:  # whole already, or not representable
            continue
        scored.append((count * (len(pieces) - 1), word, NewWord(word, pieces, count)))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [w for _, _, w in scored[:n]]


def extend_tokenizer(tokenizer: Tokenizer, words: Sequence[NewWord]) -> Tokenizer:
    """`tokenizer` with `words` appended to its vocabulary (ids from its current size on)."""
    spec = json.loads(tokenizer.backend.to_str())
    model = spec["model"]
    first = tokenizer.backend.get_vocab_size(with_added_tokens=True)
    if tokenizer.kind == "unigram":
        if len(model["vocab"]) != first:
            raise TokenizerError(
                f"the Unigram vocabulary holds {len(model['vocab'])} pieces but ids run to "
                f"{first}; added tokens sit past its end, so new pieces cannot follow them"
            )
        scores = [score for _, score in model["vocab"]]
        for w in words:  # just above the best segmentation it replaces
            model["vocab"].append([w.token, sum(scores[i] for i in w.pieces) + 1.0])
    else:
        for offset, w in enumerate(words):
            model["vocab"][w.token] = first + offset
        if tokenizer.kind == "bpe":
            model["ignore_merges"] = True
    backend = BackendTokenizer.from_str(json.dumps(spec))
    extended = tokenizer.with_backend(backend)
    whole = [w.token for w in words if len(pieces_of(extended, w.token)) != 1]
    if whole:
        raise TokenizerError(f"new words still cut into pieces: {whole[:5]}")
    return extended


def changed_words(
    before: Tokenizer, after: Tokenizer, words: Iterable[str], new: Sequence[NewWord]
) -> list[str]:
    """Words that contain no new word but are cut differently by `after` (should be none)."""
    stems = [w.token.lstrip("Ġ▁") for w in new]
    return [
        word
        for word in words
        if not any(stem in word for stem in stems)
        and pieces_of(before, word) != pieces_of(after, word)
    ]


def tokens_per_word(tokenizer: Tokenizer, counts: Counter[str]) -> float:
    """Mean pieces per word occurrence over `counts`."""
    total = sum(counts.values())
    if not total:
        raise ConfigError("the input holds no words")
    return sum(len(pieces_of(tokenizer, w)) * c for w, c in counts.items()) / total
