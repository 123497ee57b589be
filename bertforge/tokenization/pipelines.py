"""The `tokenizers` pipelines bertforge supports: BERT WordPiece, RoBERTa byte-level BPE and
ALBERT SentencePiece Unigram.

Used both to train new tokenizers and to rebuild one from bare vocabulary files.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from tokenizers import (
    AddedToken,
    Regex,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from tokenizers import Tokenizer as BackendTokenizer

from bertforge.errors import TokenizerError

# transformers' marker for "no length limit"; kept identical so configs round-trip.
VERY_LARGE_INTEGER = int(1e30)

KINDS = ("wordpiece", "bpe", "unigram")

# SentencePiece's word-start marker: a Unigram piece beginning with it starts a word.
METASPACE = "\u2581"


@dataclass(frozen=True)
class SpecialTokens:
    """The strings that play each special role; None where a tokenizer has no such token."""

    pad: str | None = None
    unk: str | None = None
    cls: str | None = None
    sep: str | None = None
    mask: str | None = None

    @staticmethod
    def roles() -> tuple[str, ...]:
        return tuple(f.name for f in fields(SpecialTokens))


WORDPIECE_SPECIALS = SpecialTokens(
    pad="[PAD]", unk="[UNK]", cls="[CLS]", sep="[SEP]", mask="[MASK]"
)
BPE_SPECIALS = SpecialTokens(pad="<pad>", unk="<unk>", cls="<s>", sep="</s>", mask="<mask>")
ALBERT_SPECIALS = SpecialTokens(pad="<pad>", unk="<unk>", cls="[CLS]", sep="[SEP]", mask="[MASK]")
# DeBERTa's SentencePiece tokenizers use BERT's names (DebertaV2Tokenizer's defaults).
DEBERTA_SPECIALS = WORDPIECE_SPECIALS

# Id order of the specials in a freshly trained vocabulary: [PAD]=0 as in BERT, <s>=0 as in
# RoBERTa, <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4 as in ALBERT's spiece.model.
_TRAINING_ORDER = {
    "wordpiece": ("pad", "unk", "cls", "sep", "mask"),
    "bpe": ("cls", "pad", "sep", "unk", "mask"),
    "unigram": ("pad", "unk", "cls", "sep", "mask"),
}
_DEFAULT_SPECIALS = {
    "wordpiece": WORDPIECE_SPECIALS,
    "bpe": BPE_SPECIALS,
    "unigram": ALBERT_SPECIALS,
}


def default_specials(kind: str) -> SpecialTokens:
    return _DEFAULT_SPECIALS[kind]


def special_added_tokens(kind: str, specials: SpecialTokens, extra: list[str]) -> list[AddedToken]:
    """The specials in training id order, then `extra`; a BPE <mask> eats the space before it."""
    roles = [getattr(specials, role) for role in _TRAINING_ORDER[kind]]
    tokens = [tok for tok in roles if tok is not None] + [t for t in extra if t not in roles]
    return [
        AddedToken(
            tok, lstrip=kind == "bpe" and tok == specials.mask, normalized=False, special=True
        )
        for tok in tokens
    ]


def wordpiece_backend(
    vocab: dict[str, int] | None,
    unk_token: str,
    *,
    lowercase: bool,
    strip_accents: bool | None,
    chinese_chars: bool,
) -> BackendTokenizer:
    """The BERT pipeline; `vocab=None` gives an untrained model for WordPieceTrainer."""
    backend = BackendTokenizer(
        models.WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=100)
    )
    # strip_accents=None follows `lowercase`, exactly as original BERT does.
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=chinese_chars,
        strip_accents=strip_accents,
        lowercase=lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def bpe_backend(
    vocab: dict[str, int] | None,
    merges: list[tuple[str, str]] | None,
    *,
    lowercase: bool = False,
    add_prefix_space: bool = False,
) -> BackendTokenizer:
    """The RoBERTa byte-level BPE pipeline; `vocab=None` gives an untrained model for BpeTrainer."""
    backend = BackendTokenizer(models.BPE(vocab, merges, fuse_unk=False))
    if lowercase:
        backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    return backend


def albert_normalizer(
    *, lowercase: bool, keep_accents: bool, precompiled_charsmap: bytes | None
) -> normalizers.Normalizer:
    """ALBERT's text cleanup, in the order transformers' AlbertTokenizer applies it.

    The charsmap (SentencePiece's nmt_nfkc rules, from spiece.model) comes last, as in the
    original ALBERT code, which lowercased and stripped accents before calling SentencePiece.
    """
    steps: list[normalizers.Normalizer] = [
        normalizers.Replace("``", '"'),
        normalizers.Replace("''", '"'),
    ]
    if not keep_accents:
        steps += [normalizers.NFKD(), normalizers.StripAccents()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    if precompiled_charsmap:
        steps.append(normalizers.Precompiled(precompiled_charsmap))
    return normalizers.Sequence(steps)


def unigram_backend(
    vocab: list[tuple[str, float]],
    unk_id: int,
    *,
    lowercase: bool,
    keep_accents: bool,
    precompiled_charsmap: bytes | None,
) -> BackendTokenizer:
    """The ALBERT SentencePiece Unigram pipeline, built exactly as transformers' AlbertTokenizer.

    Words are split on whitespace and each gets the "\u2581" prefix, so every piece that starts
    a word begins with it and continuation pieces do not.
    """
    backend = BackendTokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    backend.normalizer = albert_normalizer(
        lowercase=lowercase, keep_accents=keep_accents, precompiled_charsmap=precompiled_charsmap
    )
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always"),
        ]
    )
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    return backend


def deberta_backend(
    vocab: list[tuple[str, float]], unk_id: int, *, lowercase: bool
) -> BackendTokenizer:
    """The SentencePiece Unigram pipeline transformers' DebertaV2Tokenizer builds (no punctuation
    split, a prefix space): runs of whitespace and line breaks become one space, NFC, trailing
    spaces go, and each space turns into the "\u2581" that starts the next word's first piece
    (so a piece's offsets take in the space before it)."""
    backend = BackendTokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    steps = [normalizers.Lowercase()] if lowercase else []
    steps += [
        normalizers.Replace(Regex(r"\s{2,}|[\n\r\t]"), " "),
        normalizers.NFC(),
        normalizers.Strip(left=False, right=True),
    ]
    backend.normalizer = normalizers.Sequence(steps)
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")]
    )
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    return backend


def _required_id(backend: BackendTokenizer, token: str | None, role: str) -> tuple[str, int]:
    tid = backend.token_to_id(token) if token is not None else None
    if token is None or tid is None:
        raise TokenizerError(
            f"the {role} token {token!r} is not in the vocabulary; add it or name the right "
            f"token as {role}_token in tokenizer_config.json"
        )
    return token, tid


def attach_post_processor(
    backend: BackendTokenizer, kind: str, specials: SpecialTokens, *, add_prefix_space: bool = False
) -> None:
    """[CLS] A [SEP] B [SEP] (type ids 0/1) for WordPiece and Unigram; <s> A </s></s> B </s> for
    BPE."""
    cls = _required_id(backend, specials.cls, "cls")
    sep = _required_id(backend, specials.sep, "sep")
    if kind == "bpe":
        backend.post_processor = processors.RobertaProcessing(
            sep, cls, trim_offsets=True, add_prefix_space=add_prefix_space
        )
        return
    c, s = cls[0], sep[0]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{c}:0 $A:0 {s}:0",
        pair=f"{c}:0 $A:0 {s}:0 $B:1 {s}:1",
        special_tokens=[cls, sep],
    )


def add_specials_to_backend(backend: BackendTokenizer, kind: str, specials: SpecialTokens) -> None:
    """Mark the special tokens so they are never split and can be skipped when decoding."""
    tokens = special_added_tokens(kind, specials, [])
    backend.add_special_tokens([t for t in tokens if backend.token_to_id(t.content) is not None])
