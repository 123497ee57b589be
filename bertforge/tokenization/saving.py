"""Write a tokenizer directory that both bertforge and transformers load to the same ids."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as BackendTokenizer
from tokenizers import processors

from bertforge.atomic import atomic_path, write_text
from bertforge.tokenization.pipelines import SpecialTokens, deberta_backend, unigram_backend
from bertforge.tokenization.spiece import parse_spiece, spec_charsmap, spiece_for

logger = logging.getLogger(__name__)

# Loads tokenizer.json verbatim; used when no model-specific class rebuilds the same pipeline.
GENERIC_CLASS = "PreTrainedTokenizerFast"


def _bert_class(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """BertTokenizer when the pipeline is the one it rebuilds from its config, else generic.

    transformers 5's BertTokenizer ignores tokenizer.json's normalizer, pre-tokenizer and decoder
    and rebuilds them from do_lower_case / strip_accents / tokenize_chinese_chars.
    """
    norm, model = spec.get("normalizer") or {}, spec["model"]
    canonical = (
        norm.get("type") == "BertNormalizer"
        and norm.get("clean_text") is True
        and (spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
        and (spec.get("decoder") or {}) == {"type": "WordPiece", "prefix": "##", "cleanup": True}
        and model.get("continuing_subword_prefix") == "##"
        and model.get("max_input_chars_per_word") == 100
    )
    if not canonical:
        return GENERIC_CLASS, {}
    return "BertTokenizer", {
        "do_lower_case": norm["lowercase"],
        "strip_accents": norm["strip_accents"],
        "tokenize_chinese_chars": norm["handle_chinese_chars"],
    }


def _roberta_class(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """RobertaTokenizer rebuilds a normalizer-free ByteLevel BPE with RobertaProcessing (from
    vocab + merges alone)."""
    pre, post = spec.get("pre_tokenizer") or {}, spec.get("post_processor") or {}
    model = spec["model"]
    canonical = (
        spec.get("normalizer") is None
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex") is True
        and pre.get("trim_offsets") is True
        and (spec.get("decoder") or {}).get("type") == "ByteLevel"
        and post.get("type") == "RobertaProcessing"
        and post.get("add_prefix_space") == pre.get("add_prefix_space")
        and not model.get("continuing_subword_prefix")
        and not model.get("end_of_word_suffix")
        and not model.get("byte_fallback")
        and not model.get("ignore_merges")  # extend-vocab's whole words
        and model.get("dropout") is None
    )
    if not canonical:
        return GENERIC_CLASS, {}
    return "RobertaTokenizer", {
        "add_prefix_space": pre["add_prefix_space"],
        "trim_offsets": post["trim_offsets"],
    }


def _albert_rebuild(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """The pipeline JSON AlbertTokenizer would rebuild for `spec`, and the config flags for it.

    Built around a one-piece Unigram: only the pipeline parts are compared, never the vocab.
    """
    steps = _normalizer_steps(spec)
    lowercase, keep_accents = "Lowercase" in steps, "NFKD" not in steps
    rebuilt = unigram_backend(
        [("<unk>", 0.0)],
        0,
        lowercase=lowercase,
        keep_accents=keep_accents,
        precompiled_charsmap=spec_charsmap(spec),
    )
    flags = {"do_lower_case": lowercase, "keep_accents": keep_accents}
    return _with_template(rebuilt, _spec_ids(spec)), flags


def _normalizer_steps(spec: dict[str, Any]) -> list[str]:
    return [n.get("type") for n in (spec.get("normalizer") or {}).get("normalizers", [])]


def _spec_ids(spec: dict[str, Any]) -> dict[str, int]:
    """Every Unigram piece and added token of a tokenizer.json, by content."""
    ids = {piece: i for i, (piece, _) in enumerate(spec["model"]["vocab"])}
    return ids | {t["content"]: t["id"] for t in spec.get("added_tokens", [])}


def _with_template(rebuilt: BackendTokenizer, ids: dict[str, int]) -> dict[str, Any]:
    """The pipeline JSON of `rebuilt` with the [CLS] A [SEP] B [SEP] template the SentencePiece
    classes (ALBERT's, DeBERTa's) add, at the ids the tokenizer gives those two."""
    rebuilt.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    return json.loads(rebuilt.to_str())


def _albert_class(spec: dict[str, Any], specials: SpecialTokens) -> tuple[str, dict[str, Any]]:
    """AlbertTokenizer when it would rebuild this very pipeline, else generic.

    transformers 5's AlbertTokenizer keeps tokenizer.json's vocab, scores and post-processor
    (spiece.model's vocab and its own [CLS]/[SEP] template when there is no tokenizer.json), but
    rebuilds the normalizer from do_lower_case / keep_accents + the charsmap and the
    pre-tokenizer and decoder from scratch, forces unk id 1, and makes special tokens only of
    those its config names.
    """
    model, added = spec["model"], spec.get("added_tokens", [])
    if (specials.cls, specials.sep) != ("[CLS]", "[SEP]"):  # its template names these two
        return GENERIC_CLASS, {}
    expected, flags = _albert_rebuild(spec)
    plain = ("lstrip", "rstrip", "single_word", "normalized")
    parts = ("normalizer", "pre_tokenizer", "decoder", "post_processor")
    canonical = (
        all(spec.get(key) == expected[key] for key in parts)
        and model.get("unk_id") == 1
        and not model.get("byte_fallback")
        and all(t["special"] and not any(t[k] for k in plain) for t in added)
    )
    if not canonical:
        return GENERIC_CLASS, {}
    keys: dict[str, Any] = dict(flags)
    named = {getattr(specials, role) for role in SpecialTokens.roles()}
    if extra := [t["content"] for t in added if t["content"] not in named]:
        keys["extra_special_tokens"] = extra  # AlbertTokenizer adds these as specials too
    return "AlbertTokenizer", keys


def _deberta_class(spec: dict[str, Any], specials: SpecialTokens) -> tuple[str, dict[str, Any]]:
    """DebertaV2Tokenizer when it would rebuild this very pipeline, else generic: it keeps the
    vocab and scores and rebuilds normalizer, pre-tokenizer, decoder and its [CLS]/[SEP]
    template from do_lower_case (split_by_punct off, add_prefix_space on, its defaults)."""
    model, added = spec["model"], spec.get("added_tokens", [])
    if (specials.cls, specials.sep) != ("[CLS]", "[SEP]") or specials.unk is None:
        return GENERIC_CLASS, {}
    lowercase = "Lowercase" in _normalizer_steps(spec)
    ids = _spec_ids(spec)
    expected = _with_template(deberta_backend([("<unk>", 0.0)], 0, lowercase=lowercase), ids)
    parts = ("normalizer", "pre_tokenizer", "decoder", "post_processor")
    canonical = (
        all(spec.get(key) == expected[key] for key in parts)
        and model.get("unk_id") == ids.get(specials.unk)
        and not model.get("byte_fallback")
        and all(t["special"] for t in added)
    )
    if not canonical:
        return GENERIC_CLASS, {}
    flags = {"do_lower_case": lowercase, "split_by_punct": False, "add_prefix_space": True}
    return "DebertaV2Tokenizer", {**flags, "vocab_type": "spm"}


def hf_tokenizer_class(
    spec: dict[str, Any], kind: str, specials: SpecialTokens
) -> tuple[str, dict[str, Any]]:
    """(tokenizer_class, extra tokenizer_config keys) that make AutoTokenizer load faithfully."""
    if kind == "unigram":
        found = _albert_class(spec, specials)
        return found if found[0] != GENERIC_CLASS else _deberta_class(spec, specials)
    return _bert_class(spec) if kind == "wordpiece" else _roberta_class(spec)


def _vocab_files(spec: dict[str, Any], backend: BackendTokenizer, kind: str) -> dict[str, str]:
    """vocab.txt, or vocab.json + merges.txt, so older loaders work without tokenizer.json."""
    by_id = sorted(backend.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1])
    if kind == "wordpiece":
        if [i for _, i in by_id] != list(range(len(by_id))):
            logger.warning("WordPiece ids have gaps; vocab.txt will not match tokenizer.json")
        return {"vocab.txt": "".join(f"{token}\n" for token, _ in by_id)}
    merges = ["#version: 0.2"]
    merges += [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    return {
        "vocab.json": json.dumps(dict(by_id), ensure_ascii=False),
        "merges.txt": "\n".join(merges) + "\n",
    }


def _spiece_file(
    spec: dict[str, Any], specials: SpecialTokens, original: bytes | None, name: str
) -> dict[str, bytes]:
    """spiece.model (spm.model for DeBERTa), for the SentencePiece classes without
    tokenizer.json (and for SentencePiece itself)."""
    if spec["model"].get("unk_id") is None:
        logger.warning("this Unigram tokenizer has no unk piece; not writing spiece.model")
        return {}
    source = parse_spiece(original, "the spiece.model it was loaded from") if original else None
    return {name: spiece_for(spec, specials.pad, source)}


def tokenizer_files(
    backend: BackendTokenizer,
    kind: str,
    specials: SpecialTokens,
    model_max_length: int,
    spiece_model: bytes | None = None,
    tokenizer_class: str | None = None,
) -> dict[str, str | bytes]:
    """File name -> contents for a complete tokenizer directory.

    `spiece_model`: the spiece.model a Unigram tokenizer was loaded or trained from; written
    back as it is while it still matches, else rebuilt from the vocabulary.
    `tokenizer_class`: a model's own name for the canonical class of this kind (e.g.
    DistilBertTokenizer, which rebuilds BertTokenizer's pipeline but returns no token types);
    a non-canonical pipeline keeps the generic class.
    """
    spec = json.loads(backend.to_str())
    special_map = {
        f"{role}_token": token
        for role in SpecialTokens.roles()
        if (token := getattr(specials, role)) is not None
    }
    if kind in ("bpe", "unigram"):
        # RoBERTa and ALBERT convention: <s> / [CLS] and </s> / [SEP] double as bos/eos.
        special_map |= {"bos_token": specials.cls, "eos_token": specials.sep}
        special_map = {k: v for k, v in special_map.items() if v is not None}
    cls_name, extra = hf_tokenizer_class(spec, kind, specials)
    # WordPiece and BPE classes of other families rebuild the same pipeline under their own
    # names; a Unigram's class is the one whose pipeline it has (ALBERT's or DeBERTa's).
    if tokenizer_class and cls_name != GENERIC_CLASS and kind != "unigram":
        cls_name = tokenizer_class
    config = {
        "tokenizer_class": cls_name,
        "model_max_length": model_max_length,
        # Our decode never applies transformers' Python-side cleanup; keep theirs off to match.
        "clean_up_tokenization_spaces": False,
        **extra,
        **special_map,
    }
    files: dict[str, str | bytes] = {
        "tokenizer.json": backend.to_str(pretty=True),
        "tokenizer_config.json": json.dumps(config, indent=2, ensure_ascii=False) + "\n",
        "special_tokens_map.json": json.dumps(special_map, indent=2, ensure_ascii=False) + "\n",
    }
    if kind == "unigram":
        name = "spm.model" if cls_name == "DebertaV2Tokenizer" else "spiece.model"
        files.update(_spiece_file(spec, specials, spiece_model, name))
    else:
        files.update(_vocab_files(spec, backend, kind))
    return files


def write_files_atomically(directory: str | Path, files: dict[str, str | bytes]) -> Path:
    """Write each file atomically: a crash leaves the old file or the new one, never a torn one."""
    target = Path(directory)
    for name, content in files.items():
        if isinstance(content, bytes):
            with atomic_path(target / name) as tmp:
                tmp.write_bytes(content)
        else:
            write_text(target / name, content)
    return target
