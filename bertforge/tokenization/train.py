"""Train a BERT WordPiece, RoBERTa byte-level BPE or ALBERT SentencePiece Unigram tokenizer on
text files."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from pathlib import Path

from tokenizers import AddedToken, pre_tokenizers, trainers
from tokenizers import Tokenizer as BackendTokenizer

from bertforge.errors import ConfigError, DataError
from bertforge.textio import iter_lines, resolve_files
from bertforge.tokenization.loading import unigram_from_spiece
from bertforge.tokenization.pipelines import (
    DEBERTA_SPECIALS,
    KINDS,
    SpecialTokens,
    attach_post_processor,
    bpe_backend,
    default_specials,
    special_added_tokens,
    wordpiece_backend,
)
from bertforge.tokenization.tokenizer import Tokenizer
from bertforge.tokenization.train_unigram import train_spiece

logger = logging.getLogger(__name__)

_BATCH = 1000  # lines per trainer batch: fewer Python->Rust crossings than line by line
_BYTE_ALPHABET = 256
# WordPiece's initial characters when not told: the most frequent 1000 (as BERT's tooling
# does, so that rare symbols do not take two entries each: "x" and "##x"), plus every CJK
# character seen at least min_frequency times, each of which is a word of its own.
BASE_ALPHABET = 1000

# Pipelines a Unigram tokenizer may have: AlbertTokenizer's or DebertaV2Tokenizer's.
STYLES = ("albert", "deberta")


def _is_cjk(ch: str) -> bool:
    """BERT's Chinese rule: the CJK Unified Ideographs blocks and their extensions."""
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def auto_alphabet(paths: list[Path], min_frequency: int) -> int:
    """`BASE_ALPHABET` plus the number of CJK characters seen at least `min_frequency` times."""
    counts: Counter[str] = Counter()
    for path in paths:
        for line in iter_lines(path):
            counts.update(line)
    cjk = sum(1 for ch, n in counts.items() if n >= min_frequency and _is_cjk(ch))
    if cjk:
        logger.info("%d CJK characters seen %d+ times join the alphabet", cjk, min_frequency)
    return BASE_ALPHABET + cjk


def _train(backend: BackendTokenizer, trainer: trainers.Trainer, paths: list[Path]) -> int:
    """Stream every non-blank line of `paths` into the trainer; returns the line count."""
    lines = chain.from_iterable(iter_lines(p) for p in paths)
    count = 0

    def batches() -> Iterator[list[str]]:
        nonlocal count
        while batch := list(islice(lines, _BATCH)):
            count += len(batch)
            yield batch

    backend.train_from_iterator(batches(), trainer=trainer)
    if count == 0:
        names = ", ".join(str(p) for p in paths[:3])
        raise DataError(f"empty corpus: no non-blank lines in {names}; check the input files")
    return count


def _train_wordpiece(
    make_backend: Callable[[], BackendTokenizer],
    paths: list[Path],
    added: list[AddedToken],
    **trainer_args: object,
) -> tuple[BackendTokenizer, int]:
    """WordPiece training made reproducible.

    tokenizers 0.23 gives the "##x" continuation tokens ids in hash-map order, which also
    changes merge tie-breaks, so two runs on the same text differ (huggingface/tokenizers#1794).
    A merge-free first pass finds those tokens; the real pass gets them, sorted, as fixed
    specials, and they are then dropped from the added-token list (they stay in the vocab).
    """
    probe = make_backend()
    probe_args = {**trainer_args, "vocab_size": 0}
    _train(probe, trainers.WordPieceTrainer(**probe_args), paths)
    continuation = sorted(t for t in probe.get_vocab() if len(t) == 3 and t.startswith("##"))
    pinned = [AddedToken(t, normalized=False, special=True) for t in continuation]

    backend = make_backend()
    trainer = trainers.WordPieceTrainer(special_tokens=added + pinned, **trainer_args)
    count = _train(backend, trainer, paths)
    spec = json.loads(backend.to_str())
    keep = set(continuation)
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in keep]
    return BackendTokenizer.from_str(json.dumps(spec)), count


def _train_with_tokenizers(
    kind: str,
    paths: list[Path],
    added: list[AddedToken],
    unk: str,
    lowercase: bool,
    *,
    vocab_size: int,
    min_frequency: int,
    limit_alphabet: int,
    show_progress: bool,
) -> tuple[BackendTokenizer, int]:
    """WordPiece or byte-level BPE, trained by the `tokenizers` trainers."""
    if kind == "wordpiece":
        return _train_wordpiece(
            lambda: wordpiece_backend(
                None, unk, lowercase=lowercase, strip_accents=None, chinese_chars=True
            ),
            paths,
            added,
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            limit_alphabet=limit_alphabet,
            continuing_subword_prefix="##",
            show_progress=show_progress,
        )
    backend = bpe_backend(None, None, lowercase=lowercase)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=added,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    return backend, _train(backend, trainer, paths)


def _train_unigram(
    paths: list[Path],
    specials: SpecialTokens,
    added: list[AddedToken],
    vocab_size: int,
    lowercase: bool,
    show_progress: bool,
    model_max_length: int,
    style: str,
) -> tuple[Tokenizer, int]:
    """sentencepiece trains the model file; the tokenizer is what AlbertTokenizer (or
    DebertaV2Tokenizer) builds from it."""
    model, count = train_spiece(
        paths,
        vocab_size,
        lowercase=lowercase,
        pad=str(specials.pad),
        unk=str(specials.unk),
        control=[t.content for t in added if t.content not in (specials.pad, specials.unk)],
        show_progress=show_progress,
    )
    config = {"do_lower_case": lowercase, "keep_accents": False}
    loaded = unigram_from_spiece(model, config, {}, style=style)
    tokenizer = Tokenizer(
        loaded.backend,
        specials=loaded.specials,
        model_max_length=model_max_length,
        spiece_model=loaded.spiece_model,
    )
    return tokenizer, count


def train_tokenizer(
    files: Iterable[str | Path],
    kind: str,
    vocab_size: int,
    *,
    lowercase: bool | None = None,
    min_frequency: int = 2,
    special_tokens: list[str] | None = None,
    limit_alphabet: int | None = None,
    show_progress: bool = False,
    model_max_length: int = 512,
    style: str = "albert",
) -> Tokenizer:
    """Train a tokenizer on UTF-8 text files (or directories of *.txt / *.gz), one text per line.

    kind "wordpiece": the BERT pipeline, lowercasing (and accent stripping) by default, specials
    [PAD]=0 [UNK] [CLS] [SEP] [MASK]. kind "bpe": RoBERTa byte-level BPE, cased by default,
    specials <s>=0 <pad> </s> <unk> <mask>. `special_tokens` are extra specials appended after
    those. `limit_alphabet` caps WordPiece's initial characters (default: the 1000 most
    frequent plus every CJK character seen `min_frequency` times, BERT's Chinese rule: each
    CJK character is its own token and `##` never continues one); BPE starts from bytes.
    kind "unigram": ALBERT's SentencePiece Unigram, trained by `sentencepiece` (deterministic,
    `min_frequency` and `limit_alphabet` do not apply), lowercased by default like albert-base-v2,
    specials <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4; `vocab_size` is then an upper bound that
    a small corpus may not reach (the trained size is logged); `style="deberta"` builds
    DebertaV2Tokenizer's pipeline instead (cased by default, [PAD]=0 [UNK]=1 [CLS] [SEP] [MASK],
    spaces kept as the next word's "\u2581"). `show_progress` draws the
    trainers' bars when stderr is a terminal (off one, they print only blank lines).
    """
    show_progress = show_progress and sys.stderr.isatty()
    if kind not in KINDS:
        raise ConfigError(f"tokenizer kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    if style not in STYLES or (style != "albert" and kind != "unigram"):
        raise ConfigError(
            f"tokenizer style {style!r}: a unigram tokenizer takes one of {', '.join(STYLES)}; "
            "the other kinds have one style"
        )
    specials = DEBERTA_SPECIALS if style == "deberta" else default_specials(kind)
    added = special_added_tokens(kind, specials, list(special_tokens or []))
    # Unigram needs its characters too; sentencepiece counts them, and that is checked after.
    floor = len(added) + (_BYTE_ALPHABET if kind == "bpe" else 1)
    if vocab_size < floor:
        raise ConfigError(f"vocab_size {vocab_size} is too small for {kind}; use at least {floor}")
    if min_frequency < 1:
        raise ConfigError(f"min_frequency must be at least 1, got {min_frequency}")
    paths = resolve_files(files)  # fail on a missing path before any work
    lower = (kind != "bpe" and style != "deberta") if lowercase is None else lowercase
    logger.info("training %s tokenizer (vocab %d) on %d file(s)", kind, vocab_size, len(paths))

    if kind == "unigram":
        tokenizer, count = _train_unigram(
            paths, specials, added, vocab_size, lower, show_progress, model_max_length, style
        )
    else:
        if limit_alphabet is None:
            wordpiece = kind == "wordpiece"
            limit_alphabet = auto_alphabet(paths, min_frequency) if wordpiece else BASE_ALPHABET
        backend, count = _train_with_tokenizers(
            kind,
            paths,
            added,
            str(specials.unk),
            lower,
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            limit_alphabet=limit_alphabet,
            show_progress=show_progress,
        )
        attach_post_processor(backend, kind, specials)
        tokenizer = Tokenizer(backend, specials=specials, model_max_length=model_max_length)
    logger.info("trained on %d lines; vocabulary has %d ids", count, tokenizer.vocab_size)
    return tokenizer
