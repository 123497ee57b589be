"""Read a tokenizer directory: tokenizer.json, or spiece.model, or bare vocab.txt, or vocab.json +
merges.txt."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, models
from tokenizers import Tokenizer as BackendTokenizer

from bertforge.errors import TokenizerError
from bertforge.tokenization.pipelines import (
    DEBERTA_SPECIALS,
    VERY_LARGE_INTEGER,
    SpecialTokens,
    add_specials_to_backend,
    attach_post_processor,
    bpe_backend,
    deberta_backend,
    default_specials,
    unigram_backend,
    wordpiece_backend,
)
from bertforge.tokenization.spiece import SpieceModel, read_spiece

logger = logging.getLogger(__name__)

_BACKEND_KINDS = {"WordPiece": "wordpiece", "BPE": "bpe", "Unigram": "unigram"}
SPIECE = "spiece.model"
DEBERTA_SPM = "spm.model"  # DeBERTa-v2/v3's name for its SentencePiece model
_ALBERT_CLASSES = ("AlbertTokenizer", "AlbertTokenizerFast")


@dataclass
class Loaded:
    backend: BackendTokenizer
    kind: str
    specials: SpecialTokens
    model_max_length: int
    spiece_model: bytes | None = None  # the spiece.model file read, written back on save


def backend_kind(backend: BackendTokenizer) -> str:
    """'wordpiece', 'bpe' or 'unigram'; other `tokenizers` models are not supported."""
    name = type(backend.model).__name__
    if name not in _BACKEND_KINDS:
        raise TokenizerError(
            f"tokenizer model type {name} is not supported; bertforge handles WordPiece, BPE "
            "and Unigram"
        )
    return _BACKEND_KINDS[name]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokenizerError(f"{path} is not valid JSON ({e}); restore or delete it") from e
    if not isinstance(data, dict):
        raise TokenizerError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def _token_str(value: object) -> str | None:
    # transformers writes special tokens either as strings or as serialized AddedToken dicts.
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def resolve_specials(
    backend: BackendTokenizer, kind: str, config: dict[str, Any], special_map: dict[str, Any]
) -> SpecialTokens:
    """Config and special_tokens_map.json first, then the kind's defaults; only tokens in vocab."""
    defaults = default_specials(kind)
    chosen: dict[str, str | None] = {}
    for role in SpecialTokens.roles():
        key = f"{role}_token"
        named = _token_str(config.get(key)) or _token_str(special_map.get(key))
        token = named or getattr(defaults, role)
        if token is not None and backend.token_to_id(token) is None:
            if named:
                logger.warning("%s %r is not in the vocabulary; ignoring it", key, token)
            token = None
        chosen[role] = token
    return SpecialTokens(**chosen)


def _from_tokenizer_json(path: Path) -> BackendTokenizer:
    try:
        text = path.read_text(encoding="utf-8")
        json.loads(text)  # a precise message for plain JSON damage
        return BackendTokenizer.from_str(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokenizerError(f"{path} is not valid JSON ({e}); re-save the tokenizer") from e
    except Exception as e:  # tokenizers raises bare Exception for schema errors
        raise TokenizerError(f"{path} was rejected by the tokenizers library: {e}") from e


def read_vocab_txt(path: Path) -> dict[str, int]:
    """One token per line, id = line number, as transformers' `load_vocab` reads it."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise TokenizerError(f"{path} is not UTF-8 (byte {e.start}); re-save it as UTF-8") from e
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    if not lines:
        raise TokenizerError(f"{path} is empty; a WordPiece vocab needs one token per line")
    return {token: i for i, token in enumerate(lines)}


def _from_vocab_txt(path: Path, config: dict[str, Any], special_map: dict[str, Any]) -> Loaded:
    vocab = read_vocab_txt(path)
    probe = BackendTokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    specials = resolve_specials(probe, "wordpiece", config, special_map)
    if specials.unk is None:
        raise TokenizerError(f"{path} has no unknown token ([UNK]); add it or set unk_token")
    backend = wordpiece_backend(
        vocab,
        specials.unk,
        lowercase=bool(config.get("do_lower_case", True)),
        strip_accents=config.get("strip_accents"),
        chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
    )
    add_specials_to_backend(backend, "wordpiece", specials)
    attach_post_processor(backend, "wordpiece", specials)
    return Loaded(backend, "wordpiece", specials, _max_length(config))


def _from_vocab_json(
    vocab_path: Path, merges_path: Path, config: dict[str, Any], special_map: dict[str, Any]
) -> Loaded:
    try:
        vocab, merges = models.BPE.read_file(str(vocab_path), str(merges_path))
    except Exception as e:  # tokenizers raises bare Exception for unreadable files
        raise TokenizerError(f"could not read BPE files {vocab_path} / {merges_path}: {e}") from e
    if not vocab:
        raise TokenizerError(f"{vocab_path} is empty; a BPE vocab needs at least the byte alphabet")
    add_prefix_space = bool(config.get("add_prefix_space", False))
    backend = bpe_backend(vocab, merges, add_prefix_space=add_prefix_space)
    specials = resolve_specials(backend, "bpe", config, special_map)
    add_specials_to_backend(backend, "bpe", specials)
    attach_post_processor(backend, "bpe", specials, add_prefix_space=add_prefix_space)
    return Loaded(backend, "bpe", specials, _max_length(config))


def unigram_from_spiece(
    model: SpieceModel,
    config: dict[str, Any],
    special_map: dict[str, Any],
    style: str = "albert",
    added: dict[str, int] | None = None,
) -> Loaded:
    """The pipeline transformers' AlbertTokenizer builds from spiece.model + tokenizer_config.json
    (or, `style="deberta"`, DebertaV2Tokenizer from spm.model).

    Casing follows do_lower_case (default True for ALBERT, False for DeBERTa) and keep_accents
    (default False), as there. CONTROL pieces become special added tokens and USER_DEFINED ones
    plain added tokens, as transformers' SentencePiece extractor makes them. `added`
    (added_tokens.json: token -> id past the model's pieces; DeBERTa-v3 keeps its [MASK]
    there) are appended at exactly those ids.
    """
    if style == "deberta":
        backend = deberta_backend(
            model.vocab, model.unk_id, lowercase=bool(config.get("do_lower_case", False))
        )
        roles = {f"{r}_token": getattr(DEBERTA_SPECIALS, r) for r in SpecialTokens.roles()}
        config = {**roles, **config}  # its tokenizer_config.json usually names none
    else:
        backend = unigram_backend(
            model.vocab,
            model.unk_id,
            lowercase=bool(config.get("do_lower_case", True)),
            keep_accents=bool(config.get("keep_accents", False)),
            precompiled_charsmap=model.charsmap,
        )
    _append_added(backend, added or {}, config, style)
    if "unk_token" not in config and "unk_token" not in special_map:
        config = {**config, "unk_token": model.unk_piece}  # the model knows its own unk
    specials = resolve_specials(backend, "unigram", config, special_map)
    add_specials_to_backend(backend, "unigram", specials)
    named = {tok.content for tok in backend.get_added_tokens_decoder().values()}
    backend.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t in model.control if t not in named]
    )
    backend.add_tokens([AddedToken(t, normalized=False) for t in model.user_defined])
    attach_post_processor(backend, "unigram", specials)
    # tokenizers reads JSON floats to within an ulp, not exactly: pass the float32 scores
    # through that reading once, so this tokenizer has the fingerprint of its own saved
    # tokenizer.json (a second pass changes nothing).
    backend = BackendTokenizer.from_str(backend.to_str())
    return Loaded(backend, "unigram", specials, _max_length(config), model.data)


def _append_added(
    backend: BackendTokenizer, added: dict[str, int], config: dict[str, Any], style: str
) -> None:
    """added_tokens.json's tokens at their ids (special when a special role names them)."""
    defaults = DEBERTA_SPECIALS if style == "deberta" else default_specials("unigram")
    roles = {config.get(f"{r}_token") or getattr(defaults, r) for r in SpecialTokens.roles()}
    for token, tid in sorted(added.items(), key=lambda kv: kv[1]):
        if backend.token_to_id(token) is None:
            # transformers matches a plain added token in the normalised text, a special one
            # in the raw text
            special = token in roles
            new = AddedToken(token, normalized=not special, special=special)
            if special:
                backend.add_special_tokens([new])
            else:
                backend.add_tokens([new])
        if backend.token_to_id(token) != tid:
            raise TokenizerError(
                f"added_tokens.json puts {token!r} at id {tid} but the SentencePiece model "
                f"places it at {backend.token_to_id(token)}: the two files do not belong together"
            )


def _spiece_beside(path: Path) -> bytes | None:
    """spiece.model next to a Unigram tokenizer.json, kept so that saving writes it back."""
    if not path.is_file():
        return None
    try:
        return read_spiece(path).data
    except TokenizerError as e:
        logger.warning("ignoring %s (%s); saving rebuilds it from tokenizer.json", path, e)
        return None


def _max_length(config: dict[str, Any]) -> int:
    value = config.get("model_max_length")
    return value if isinstance(value, int) and value > 0 else VERY_LARGE_INTEGER


def load_directory(path: str | Path) -> Loaded:
    """Load whichever supported files `path` holds, preferring tokenizer.json."""
    root = Path(path)
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise TokenizerError(
            f"tokenizer directory {root} {what}; "
            "pass a directory holding tokenizer.json, spiece.model, spm.model or vocab.txt"
        )
    config = _read_json(root / "tokenizer_config.json")
    special_map = _read_json(root / "special_tokens_map.json")
    if (root / "tokenizer.json").is_file():
        backend = _from_tokenizer_json(root / "tokenizer.json")
        kind = backend_kind(backend)
        specials = resolve_specials(backend, kind, config, special_map)
        spiece = None
        if kind == "unigram":
            spiece = _spiece_beside(root / SPIECE) or _spiece_beside(root / DEBERTA_SPM)
        return Loaded(backend, kind, specials, _max_length(config), spiece)
    if (root / SPIECE).is_file():
        return unigram_from_spiece(read_spiece(root / SPIECE), config, special_map)
    if (root / DEBERTA_SPM).is_file():
        spm = read_spiece(root / DEBERTA_SPM)
        added = _read_json(root / "added_tokens.json")
        return unigram_from_spiece(spm, config, special_map, style="deberta", added=added)
    if (root / "vocab.txt").is_file():
        return _from_vocab_txt(root / "vocab.txt", config, special_map)
    if (root / "vocab.json").is_file() and (root / "merges.txt").is_file():
        return _from_vocab_json(root / "vocab.json", root / "merges.txt", config, special_map)
    if config.get("tokenizer_class") in _ALBERT_CLASSES:
        raise TokenizerError(
            f"{root} is an ALBERT tokenizer (tokenizer_config.json names "
            f"{config['tokenizer_class']}) but has neither tokenizer.json nor {SPIECE}; "
            f"copy {SPIECE} from the original checkpoint into it"
        )
    present = sorted(p.name for p in root.iterdir())[:8]
    raise TokenizerError(
        f"{root} holds no tokenizer: expected tokenizer.json, {SPIECE}, {DEBERTA_SPM}, "
        f"vocab.txt, or vocab.json + merges.txt (found: {', '.join(present) or 'nothing'}); "
        "point at a tokenizer directory"
    )
