"""DeBERTa-v2 and -v3 (He et al. 2021, 2023; HF model_type "deberta-v2"): BERT's post-LN blocks
with disentangled attention (content and log-bucketed relative position scored separately,
one shared table of distance embeddings, LayerNorm'd in v3, seen through the key and query
projections when `share_att_key`), no absolute positions and no token types in the published
v3 configs, a SentencePiece tokenizer, and a classification head of its own on the first
token (dense -> GELU, the "context pooler").

Read and refused: a config with relative attention *and* absolute positions
(`position_biased_input`), an embedding size other than the hidden size, the convolution
layer of v2-xlarge (`conv_kernel_size`), the non-legacy MLM head (`legacy: false`), and a
pooler of another width: none of the published v3 checkpoints has them.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

from bertforge.errors import CheckpointError
from bertforge.families.bert import BERT, BERT_ENCODER_KEYS, BERT_FIELDS, EMBEDDING_KEYS
from bertforge.families.spec import Classifier, Heads, HFConfig

TERMS = ("c2p", "p2c")
_L = "encoder.layer.{i}."


def _read(hf: dict[str, Any]) -> dict[str, Any]:
    relative = bool(hf.get("relative_attention", False))
    absolute = bool(hf.get("position_biased_input", True))
    if relative and absolute:
        raise CheckpointError(
            "relative_attention with position_biased_input: relative and absolute positions "
            "together are not supported (the published DeBERTa-v2/v3 configs set "
            "position_biased_input false)"
        )
    hidden = hf["hidden_size"]
    for key, ok in (
        ("embedding_size", hf.get("embedding_size") in (None, hidden)),
        ("pooler_hidden_size", hf.get("pooler_hidden_size") in (None, hidden)),
        ("conv_kernel_size", not hf.get("conv_kernel_size")),
        ("legacy", hf.get("legacy", True) is True),
    ):
        if not ok:
            raise CheckpointError(
                f"{key}={hf[key]!r} is not supported for deberta-v2 checkpoints (the published "
                "v3 configs leave it at its default)"
            )
    terms = hf.get("pos_att_type") or []
    if isinstance(terms, str):
        terms = [t.strip() for t in terms.lower().split("|") if t.strip()]
    unknown = sorted(set(terms) - set(TERMS))
    if unknown:
        raise CheckpointError(
            f"pos_att_type {', '.join(unknown)} is not supported; choose from c2p, p2c"
        )
    if terms and not relative:
        raise CheckpointError(
            f"pos_att_type {'|'.join(terms)} without relative_attention: transformers still "
            "scales the scores as if the terms were there; not supported (drop pos_att_type)"
        )
    span = hf.get("max_relative_positions", -1)
    norms = str(hf.get("norm_rel_ebd", "none")).lower().split("|")
    return {
        "position": "disentangled" if relative else "absolute" if absolute else "none",
        "max_relative_position": span if span >= 1 else hf.get("max_position_embeddings", 512),
        "position_buckets": max(0, hf.get("position_buckets", -1)),
        "pos_att_type": [t for t in TERMS if t in terms] if relative else list(TERMS),
        "share_att_key": bool(hf.get("share_att_key", False)),
        # (transformers builds the table's norm even without relative attention: unused)
        "relative_norm": relative and "layer_norm" in [n.strip() for n in norms],
    }


def _written(ours: dict[str, Any]) -> dict[str, Any]:
    relative = ours["position"] == "disentangled"
    return {
        "relative_attention": relative,
        "position_biased_input": ours["position"] == "absolute",
        "max_relative_positions": ours["max_relative_position"],
        "position_buckets": ours["position_buckets"] or -1,
        "pos_att_type": "|".join(ours["pos_att_type"]) if relative else None,
        "share_att_key": ours["share_att_key"],
        "norm_rel_ebd": "layer_norm" if ours["relative_norm"] else "none",
        "pooler_hidden_size": ours["hidden_size"],
        "legacy": True,
    }


def _size(layers: int, hidden: int, heads: int, intermediate: int) -> dict[str, int]:
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
    }


_POOLER = Classifier(pooled=False, activation="gelu", dropout_first=False)
_TASK_HEAD = (("head.dense.{p}", "pooler.dense.{p}"), ("head.out.{p}", "classifier.{p}"))

DEBERTA_V2 = replace(
    BERT,
    name="deberta-v2",
    doc="DeBERTa-v2/v3: disentangled attention over log-bucketed distances, SentencePiece",
    tokenizer="unigram",
    tokenizer_options=MappingProxyType({"style": "deberta"}),
    pair_head=False,
    defaults=MappingProxyType(
        {
            "position": "disentangled",
            "position_buckets": 256,
            "max_relative_position": 512,
            "share_att_key": True,
            "relative_norm": True,
            "type_vocab_size": 0,
            "layer_norm_eps": 1e-7,
            "head_activation": "gelu",
        }
    ),
    # DeBERTa-v3-xsmall and -small (base and large are BERT's shapes).
    presets=MappingProxyType(
        {
            "xsmall": _size(12, 384, 6, 1536),
            "small": _size(6, 768, 12, 3072),
        }
    ),
    recipe="deberta-v3-base",
    heads=Heads(sequence=_POOLER, choice=_POOLER),
    hf=replace(
        BERT.hf,
        model_type="deberta-v2",
        class_prefix="DebertaV2",
        base_prefix="deberta.",
        config=HFConfig(
            fields=(*BERT_FIELDS, "head_activation"),
            renames=MappingProxyType({"head_activation": "pooler_hidden_act"}),
            read=_read,
            written=_written,
        ),
        encoder_keys=(
            *EMBEDDING_KEYS,
            (
                "encoder.layers.{i}.attn.qkv.{p}",
                tuple(_L + f"attention.self.{n}_proj.{{p}}" for n in ("query", "key", "value")),
            ),
            *(r for r in BERT_ENCODER_KEYS[len(EMBEDDING_KEYS) + 1 :] if "pooler" not in r[0]),
            ("encoder.layers.{i}.attn.positions.key.{p}", _L + "attention.self.pos_key_proj.{p}"),
            (
                "encoder.layers.{i}.attn.positions.query.{p}",
                _L + "attention.self.pos_query_proj.{p}",
            ),
            ("encoder.distances.embeddings.weight", "encoder.rel_embeddings.weight"),
            ("encoder.distances.norm.{p}", "encoder.LayerNorm.{p}"),
        ),
        head_keys=MappingProxyType(
            {
                **BERT.hf.head_keys,
                "sequence_classification": _TASK_HEAD,
                "multiple_choice": _TASK_HEAD,
            }
        ),
        pretraining=MappingProxyType({frozenset({"mlm"}): "ForMaskedLM"}),
        dropout_fields=MappingProxyType(
            {"sequence_classification": "cls_dropout", "multiple_choice": "cls_dropout"}
        ),
        tokenizer_class="DebertaV2Tokenizer",
    ),
)
