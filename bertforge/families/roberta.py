"""RoBERTa (Liu et al., 2019): BERT with byte-level BPE, one token type, positions counted past
the padding id, no NSP, and a classification head of its own on <s>."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

from bertforge.families.bert import BERT, BERT_TASK_KEYS
from bertforge.families.spec import Classifier, Heads


def _offset(fields: dict[str, Any]) -> dict[str, Any]:
    """HF's rule: real tokens count from pad_token_id + 1, padding sits at pad_token_id
    (RobertaConfig's default pad id is 1)."""
    pad = fields.get("pad_token_id", 1)
    return {"pad_token_id": pad, "position_offset": pad + 1}


def _fresh(fields: dict[str, Any]) -> dict[str, Any]:
    """A fresh RoBERTa keeps the preset's usable length: 512 positions become 514."""
    offset = _offset(fields)
    return offset | {
        "max_position_embeddings": fields["max_position_embeddings"] + offset["position_offset"]
    }


ROBERTA = replace(
    BERT,
    name="roberta",
    doc="RoBERTa: byte-level BPE, one token type, offset positions, MLM only",
    tokenizer="bpe",
    recipe="roberta-base",
    defaults=MappingProxyType({"type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1}),
    fresh=_fresh,
    pair_head=False,
    heads=Heads(
        sequence=Classifier(pooled=False, activation="tanh", dropout_first=True),
        mlm_activation="gelu",
    ),
    hf=replace(
        BERT.hf,
        model_type="roberta",
        class_prefix="Roberta",
        base_prefix="roberta.",
        config=replace(
            BERT.hf.config,
            derived=_offset,
            expect=MappingProxyType({"position_embedding_type": ("absolute",)}),
        ),
        head_keys=MappingProxyType(
            {
                "mlm": (
                    ("mlm.transform.{p}", "lm_head.dense.{p}"),
                    ("mlm.norm.{p}", "lm_head.layer_norm.{p}"),
                    ("mlm.bias", "lm_head.bias"),
                ),
                **BERT_TASK_KEYS,
                "sequence_classification": (
                    ("head.dense.{p}", "classifier.dense.{p}"),
                    ("head.out.{p}", "classifier.out_proj.{p}"),
                ),
            }
        ),
        pretraining=MappingProxyType({frozenset({"mlm"}): "ForMaskedLM"}),
        ignored=(
            "embeddings.position_ids",
            "embeddings.token_type_ids",
            "lm_head.decoder.weight",
            "lm_head.decoder.bias",
        ),
        # RobertaForMultipleChoice drops out with hidden_dropout_prob, not classifier_dropout.
        dropout_fields=MappingProxyType(
            {
                "sequence_classification": "classifier_dropout",
                "token_classification": "classifier_dropout",
            }
        ),
        tokenizer_class="RobertaTokenizer",
    ),
)
