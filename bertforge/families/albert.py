"""ALBERT (Lan et al., 2020): BERT with factorized embeddings (vocab x E, then E -> H), one
block shared across layers (HF's `num_hidden_groups` x `inner_group_num` layout), a
SentencePiece Unigram tokenizer and a sentence-order (SOP) head."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from bertforge.families.bert import BERT, BERT_FIELDS, EMBEDDING_KEYS
from bertforge.families.spec import Heads, HFConfig

_L = "encoder.albert_layer_groups.{g}.albert_layers.{j}."
_ALBERT_DROPOUT = 0.1  # classifier_dropout_prob's default; ALBERT's hidden dropout is 0

ALBERT = replace(
    BERT,
    name="albert",
    doc="ALBERT: SentencePiece, factorized embeddings, shared layers, MLM + sentence-order",
    tokenizer="unigram",
    recipe="albert-base",
    defaults=MappingProxyType(
        {
            "embedding_size": 128,
            "num_hidden_groups": 1,
            "hidden_act": "gelu_new",
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
        }
    ),
    # ALBERT-xlarge/xxlarge (Lan et al., Table 1); base and large are BERT's sizes.
    presets=MappingProxyType(
        {
            "xlarge": {
                "num_hidden_layers": 24,
                "hidden_size": 2048,
                "num_attention_heads": 16,
                "intermediate_size": 8192,
            },
            "xxlarge": {
                "num_hidden_layers": 12,
                "hidden_size": 4096,
                "num_attention_heads": 64,
                "intermediate_size": 16384,
            },
        }
    ),
    heads=Heads(
        pair_dropout=_ALBERT_DROPOUT,
        dropout=MappingProxyType(
            {
                "sequence_classification": _ALBERT_DROPOUT,
                "token_classification": _ALBERT_DROPOUT,
                "multiple_choice": _ALBERT_DROPOUT,
            }
        ),
    ),
    hf=replace(
        BERT.hf,
        model_type="albert",
        class_prefix="Albert",
        base_prefix="albert.",
        config=HFConfig(
            fields=(*BERT_FIELDS, "embedding_size", "num_hidden_groups", "inner_group_num"),
            expect=BERT.hf.config.expect,
            write=BERT.hf.config.write,
        ),
        encoder_keys=(
            *EMBEDDING_KEYS,
            ("encoder.embeddings.project.{p}", "encoder.embedding_hidden_mapping_in.{p}"),
            (
                "encoder.layers.{i}.attn.qkv.{p}",
                tuple(_L + f"attention.{n}.{{p}}" for n in ("query", "key", "value")),
            ),
            ("encoder.layers.{i}.attn.out.{p}", _L + "attention.dense.{p}"),
            ("encoder.layers.{i}.attn_norm.{p}", _L + "attention.LayerNorm.{p}"),
            ("encoder.layers.{i}.ffn.up.{p}", _L + "ffn.{p}"),
            ("encoder.layers.{i}.ffn.down.{p}", _L + "ffn_output.{p}"),
            ("encoder.layers.{i}.ffn_norm.{p}", _L + "full_layer_layer_norm.{p}"),
            ("encoder.pooler.dense.{p}", "pooler.{p}"),
        ),
        head_keys=MappingProxyType(
            {
                **BERT.hf.head_keys,
                "mlm": (
                    ("mlm.transform.{p}", "predictions.dense.{p}"),
                    ("mlm.norm.{p}", "predictions.LayerNorm.{p}"),
                    ("mlm.bias", "predictions.bias"),
                ),
                "nsp": (("nsp.classifier.{p}", "sop_classifier.classifier.{p}"),),
            }
        ),
        ignored=(
            "embeddings.position_ids",
            "embeddings.token_type_ids",
            "predictions.decoder.weight",
            "predictions.decoder.bias",
        ),
        dropout_fields=MappingProxyType(
            {
                "sequence_classification": "classifier_dropout_prob",
                "token_classification": "classifier_dropout_prob",
                "multiple_choice": "classifier_dropout_prob",
            }
        ),
        tokenizer_class="AlbertTokenizer",
    ),
)
