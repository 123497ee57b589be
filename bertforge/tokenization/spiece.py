"""spiece.model, the SentencePiece ModelProto that ALBERT checkpoints ship: read, check, write.

Only what the `tokenizers` Unigram pipeline needs is read (pieces, scores, unk id, piece types,
the precompiled normalization charsmap); the rest of the proto is kept as it was.
"""

from __future__ import annotations

import base64
import logging
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertforge.errors import TokenizerError

logger = logging.getLogger(__name__)

# sentencepiece_model.proto enums.
UNIGRAM = 1
NORMAL, UNKNOWN, CONTROL, USER_DEFINED = 1, 2, 3, 4
_MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}


def _pb2() -> Any:
    # Deferred: protobuf costs an import most tokenizer users never need. Always sentencepiece's
    # own module (as transformers does): a second copy of the .proto in one descriptor pool fails.
    from sentencepiece import sentencepiece_model_pb2

    return sentencepiece_model_pb2


@dataclass(frozen=True)
class SpieceModel:
    """The parts of a spiece.model that a Unigram tokenizer is built from."""

    vocab: list[tuple[str, float]]  # (piece, log-probability score), index = id
    unk_id: int
    charsmap: bytes | None  # precompiled normalization rules (nmt_nfkc for ALBERT); None: none
    control: list[str]  # CONTROL pieces: specials, never produced from text by SentencePiece
    user_defined: list[str]  # USER_DEFINED pieces: always kept whole
    data: bytes  # the file itself, written back unchanged on save

    @property
    def unk_piece(self) -> str:
        return self.vocab[self.unk_id][0]


def parse_spiece(data: bytes, source: str | Path) -> SpieceModel:
    """Parse and validate spiece.model bytes; `source` names the file in error messages."""
    import sentencepiece as spm

    fix = "copy spiece.model again from the original checkpoint"
    if not data:
        raise TokenizerError(f"{source} is empty; {fix}")
    proto = _pb2().ModelProto()
    try:
        proto.ParseFromString(data)
        # The reference loader: protobuf alone accepts many byte strings that are not models.
        spm.SentencePieceProcessor(model_proto=data)
    except Exception as e:  # protobuf DecodeError, sentencepiece RuntimeError/OSError
        raise TokenizerError(f"{source} is not a valid SentencePiece model ({e}); {fix}") from e
    model_type = proto.trainer_spec.model_type
    if model_type != UNIGRAM:
        name = _MODEL_TYPES.get(model_type, str(model_type))
        raise TokenizerError(
            f"{source} is a SentencePiece {name} model; bertforge reads unigram models (ALBERT) "
            "only: convert it to tokenizer.json with transformers instead"
        )
    pieces = list(proto.pieces)
    unk = [i for i, p in enumerate(pieces) if p.type == UNKNOWN]
    if len(unk) != 1:
        raise TokenizerError(f"{source} has {len(unk)} unknown pieces, not one; {fix}")
    return SpieceModel(
        vocab=[(p.piece, p.score) for p in pieces],
        unk_id=unk[0],
        charsmap=proto.normalizer_spec.precompiled_charsmap or None,
        control=[p.piece for p in pieces if p.type == CONTROL],
        user_defined=[p.piece for p in pieces if p.type == USER_DEFINED],
        data=data,
    )


def read_spiece(path: Path) -> SpieceModel:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TokenizerError(f"cannot read {path}: {e}") from e
    return parse_spiece(data, path)


def spec_charsmap(spec: dict[str, Any]) -> bytes | None:
    """The Precompiled charsmap inside a tokenizer.json normalizer, if there is one."""
    norm = spec.get("normalizer") or {}
    steps = norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
    for step in steps:
        if step.get("type") == "Precompiled" and step.get("precompiled_charsmap"):
            return base64.b64decode(step["precompiled_charsmap"])
    return None


def _f32(x: float) -> float:
    # spiece.model stores float32 scores; tokenizer.json float64 ones.
    return struct.unpack("f", struct.pack("f", x))[0]


def _matches(model: SpieceModel, spec: dict[str, Any]) -> bool:
    """Would AlbertTokenizer built from `model` use the vocab, scores and charsmap of `spec`?"""
    vocab = [(piece, _f32(score)) for piece, score in spec["model"]["vocab"]]
    return (
        vocab == model.vocab
        and spec["model"].get("unk_id") == model.unk_id
        and spec_charsmap(spec) == model.charsmap
    )


def _piece_type(i: int, piece: str, unk_id: int | None, added: dict[str, bool]) -> int:
    if i == unk_id:
        return UNKNOWN
    if piece in added:
        return CONTROL if added[piece] else USER_DEFINED
    return NORMAL


def build_spiece(
    spec: dict[str, Any], pad: str | None, template: SpieceModel | None = None
) -> bytes:
    """A spiece.model holding exactly the vocab, scores, unk id and charsmap of `spec`.

    `template` (a spiece.model that no longer matches) donates its trainer and normalizer
    settings. Special added tokens become CONTROL pieces and other added tokens USER_DEFINED
    ones, which is how transformers tells them apart when it converts the file back.
    """
    pb2 = _pb2()
    proto = pb2.ModelProto()
    if template is not None:
        proto.ParseFromString(template.data)
        del proto.pieces[:]
    model = spec["model"]
    vocab, unk_id = model["vocab"], model.get("unk_id")
    added = {t["content"]: bool(t["special"]) for t in spec.get("added_tokens", [])}
    # Scores read from float32 are within an ulp of one; a `tokenizers`-trained Unigram's are not.
    rounded = sum(not math.isclose(s, _f32(s), rel_tol=1e-12, abs_tol=0.0) for _, s in vocab)
    if rounded:
        logger.warning(
            "spiece.model stores float32 scores: %d of %d are rounded, so a loader that reads "
            "spiece.model instead of tokenizer.json may cut a few texts differently",
            rounded,
            len(vocab),
        )
    for i, (piece, score) in enumerate(vocab):
        proto.pieces.add(piece=piece, score=score, type=_piece_type(i, piece, unk_id, added))
    trainer = proto.trainer_spec
    trainer.model_type = UNIGRAM
    trainer.vocab_size = len(vocab)
    trainer.byte_fallback = False
    pieces = [piece for piece, _ in vocab]
    # -1 disables a role; the proto's defaults (bos 1, eos 2) would name pieces that are not so.
    trainer.unk_id = unk_id if unk_id is not None else -1
    trainer.pad_id = pieces.index(pad) if pad in pieces else -1
    if template is None:
        trainer.bos_id = trainer.eos_id = -1
    if unk_id is not None:
        trainer.unk_piece = pieces[unk_id]
    if pad in pieces:
        trainer.pad_piece = pad
    charsmap = spec_charsmap(spec)
    norm = proto.normalizer_spec
    if charsmap != (norm.precompiled_charsmap or None):
        norm.name = "user_defined" if charsmap else "identity"
        norm.precompiled_charsmap = charsmap or b""
    if template is None:
        norm.add_dummy_prefix = norm.remove_extra_whitespaces = norm.escape_whitespaces = True
    data = proto.SerializeToString()
    parse_spiece(data, "the spiece.model built from tokenizer.json")  # fail here, not on load
    return data


def spiece_for(spec: dict[str, Any], pad: str | None, original: SpieceModel | None) -> bytes:
    """The original file when it still describes `spec`, else one rebuilt from `spec`."""
    if original is not None and _matches(original, spec):
        return original.data
    if original is not None:
        logger.warning("spiece.model no longer matches the tokenizer; writing a rebuilt one")
    return build_spiece(spec, pad, original)
