"""How much of a text a tokenizer cannot represent: the share of characters it maps to its
unknown token. A tokenizer that does not fit the language (an English WordPiece on Chinese)
maps most of them there, and a model trained on such input learns nothing from the text."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable

from bertforge.tokenization.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

WARN_SHARE = 0.10  # warn when more than this share of the characters is unknown
SAMPLE = 2000  # texts looked at


def unknown_share(tokenizer: Tokenizer, texts: Iterable[str], sample: int = SAMPLE) -> float:
    """The share of the non-space characters of the first `sample` texts that fall inside
    unknown tokens (0 for tokenizers without one, such as byte-level BPE)."""
    unk = tokenizer.unk_token_id
    texts = [t for t in itertools.islice(texts, sample) if t]
    if unk is None or not texts:
        return 0.0
    # Whole texts, however long: counted here, never fed to a model.
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    total = unknown = 0
    for text, ids, offsets in zip(texts, enc["input_ids"], enc["offset_mapping"], strict=True):
        total += sum(not c.isspace() for c in text)
        for token, (start, end) in zip(ids, offsets, strict=True):
            if token == unk:
                unknown += sum(not c.isspace() for c in text[start:end])
    return unknown / total if total else 0.0


def warn_if_unknown(tokenizer: Tokenizer, texts: Iterable[str], where: str) -> float:
    """Warn when more than `WARN_SHARE` of the characters of `texts` are unknown to the
    tokenizer; returns the share."""
    share = unknown_share(tokenizer, texts)
    if share > WARN_SHARE:
        logger.warning(
            "%.0f%% of the characters of %s map to the unknown token %s: the tokenizer does "
            "not fit this text (another language or script?); use a checkpoint whose "
            "vocabulary covers it",
            100 * share, where, tokenizer.unk_token,
        )  # fmt: skip
    return share
