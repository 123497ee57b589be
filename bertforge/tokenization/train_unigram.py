"""Train an ALBERT SentencePiece Unigram model with `sentencepiece`, the tool ALBERT's authors used.

The corpus is streamed line by line into sentencepiece's sentence iterator, after the same
cleanup (quotes, accents, case) that the tokenizer applies before the model's own nmt_nfkc
normalization, so the pieces are learnt on the text they will later be asked to cut.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from bertforge.errors import BertforgeError, ConfigError, DataError
from bertforge.textio import iter_lines
from bertforge.tokenization.pipelines import albert_normalizer
from bertforge.tokenization.spiece import SpieceModel, parse_spiece

logger = logging.getLogger(__name__)

_TOO_SMALL = re.compile(r"smaller than required_chars\. (\d+) vs (\d+)")
# sentencepiece silently skips longer lines (its default, 4192 bytes, drops whole Wikipedia
# paragraphs); the unigram trainer cuts sentences into words first, so longer costs little.
MAX_SENTENCE_BYTES = 1 << 16


class _Sentences:
    """The corpus lines as sentencepiece should see them, counted, with read errors kept.

    sentencepiece turns an exception raised by its sentence iterator into a RuntimeError
    carrying the traceback text; `error` keeps ours (a DataError naming the file) to re-raise.
    """

    def __init__(self, paths: list[Path], lowercase: bool) -> None:
        self.count = 0
        self.too_long = 0
        self.error: BertforgeError | None = None
        self._lines = chain.from_iterable(iter_lines(p) for p in paths)
        self._normalizer = albert_normalizer(
            lowercase=lowercase, keep_accents=False, precompiled_charsmap=None
        )

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except BertforgeError as e:
            self.error = e
            raise
        self.count += 1
        text = self._normalizer.normalize_str(line)
        self.too_long += len(text.encode("utf-8")) > MAX_SENTENCE_BYTES
        return text


def train_spiece(
    paths: list[Path],
    vocab_size: int,
    *,
    lowercase: bool,
    pad: str,
    unk: str,
    control: list[str],
    show_progress: bool = False,
) -> tuple[SpieceModel, int]:
    """Train a unigram spiece.model: pad=0, unk=1, then `control` (the other specials) from id 2.

    Reproducible: one thread, every sentence used (no sampling, no shuffling), so the same text
    gives a byte-identical model. `vocab_size` is a soft limit, as WordPiece's and BPE's are: a
    small corpus gets the vocabulary it supports. Returns the model and the line count.
    """
    import sentencepiece as spm

    sentences = _Sentences(paths, lowercase)
    first = next(sentences, None)  # sentencepiece's own message for no input is cryptic
    if first is None:
        names = ", ".join(str(p) for p in paths[:3])
        raise DataError(f"empty corpus: no non-blank lines in {names}; check the input files")
    writer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=chain([first], sentences),
            model_writer=writer,
            model_type="unigram",
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            pad_id=0,
            unk_id=1,
            bos_id=-1,
            eos_id=-1,
            pad_piece=pad,
            unk_piece=unk,
            control_symbols=control,
            num_threads=1,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            max_sentence_length=MAX_SENTENCE_BYTES,
            minloglevel=0 if show_progress else 2,
        )
    except RuntimeError as e:
        if sentences.error is not None:
            raise sentences.error from None
        if match := _TOO_SMALL.search(str(e)):  # the count includes the special pieces
            raise ConfigError(
                f"vocab_size {vocab_size} is too small for unigram on this corpus: its characters "
                f"and specials alone take {match.group(2)} pieces; use at least {match.group(2)}"
            ) from e
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        names = ", ".join(str(p) for p in paths[:3])
        raise DataError(f"sentencepiece could not train on {names}: {first_line}") from e
    if sentences.too_long:
        logger.warning(
            "%d of %d lines are longer than %d bytes and were left out of training; "
            "split them into sentences",
            sentences.too_long,
            sentences.count,
            MAX_SENTENCE_BYTES,
        )
    model = parse_spiece(writer.getvalue(), "the trained spiece.model")
    return model, sentences.count
