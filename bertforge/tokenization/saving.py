"""Write a tokenizer directory that both bertforge and transformers load to the same ids."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as BackendTokenizer

from bertforge.atomic import write_text
from bertforge.tokenization.pipelines import SpecialTokens

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
    """RobertaTokenizer rebuilds a normalizer-free ByteLevel BPE with RobertaProcessing."""
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
        and model.get("dropout") is None
    )
    if not canonical:
        return GENERIC_CLASS, {}
    return "RobertaTokenizer", {
        "add_prefix_space": pre["add_prefix_space"],
        "trim_offsets": post["trim_offsets"],
    }


def hf_tokenizer_class(spec: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    """(tokenizer_class, extra tokenizer_config keys) that make AutoTokenizer load faithfully."""
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


def tokenizer_files(
    backend: BackendTokenizer, kind: str, specials: SpecialTokens, model_max_length: int
) -> dict[str, str]:
    """File name -> contents for a complete tokenizer directory."""
    spec = json.loads(backend.to_str())
    special_map = {
        f"{role}_token": token
        for role in SpecialTokens.roles()
        if (token := getattr(specials, role)) is not None
    }
    if kind == "bpe":
        # RoBERTa convention: <s> and </s> double as bos/eos.
        special_map |= {"bos_token": specials.cls, "eos_token": specials.sep}
        special_map = {k: v for k, v in special_map.items() if v is not None}
    cls_name, extra = hf_tokenizer_class(spec, kind)
    config = {
        "tokenizer_class": cls_name,
        "model_max_length": model_max_length,
        # Our decode never applies transformers' Python-side cleanup; keep theirs off to match.
        "clean_up_tokenization_spaces": False,
        **extra,
        **special_map,
    }
    files = {
        "tokenizer.json": backend.to_str(pretty=True),
        "tokenizer_config.json": json.dumps(config, indent=2, ensure_ascii=False) + "\n",
        "special_tokens_map.json": json.dumps(special_map, indent=2, ensure_ascii=False) + "\n",
    }
    files.update(_vocab_files(spec, backend, kind))
    return files


def write_files_atomically(directory: str | Path, files: dict[str, str]) -> Path:
    """Write each file atomically: a crash leaves the old file or the new one, never a torn one."""
    target = Path(directory)
    for name, text in files.items():
        write_text(target / name, text)
    return target
