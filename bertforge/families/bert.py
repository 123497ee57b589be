"""BERT (Devlin et al., 2019): the family every other one is stated against."""

from __future__ import annotations

from types import MappingProxyType

from bertforge.families.spec import Family, HFConfig, HFLayout

# Our config fields that HF's BertConfig spells the same way.
BERT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "pad_token_id",
)

_L = "encoder.layer.{i}."
# BERT's embedding names, which every family here kept (DistilBERT without the token types).
EMBEDDING_KEYS = (
    ("encoder.embeddings.tokens.weight", "embeddings.word_embeddings.weight"),
    ("encoder.embeddings.positions.weight", "embeddings.position_embeddings.weight"),
    ("encoder.embeddings.segments.weight", "embeddings.token_type_embeddings.weight"),
    ("encoder.embeddings.norm.{p}", "embeddings.LayerNorm.{p}"),
)
# The BERT layout of one encoder, shared by the families that kept it (RoBERTa, ELECTRA, NEZHA).
BERT_ENCODER_KEYS = (
    *EMBEDDING_KEYS,
    (
        "encoder.layers.{i}.attn.qkv.{p}",
        tuple(_L + f"attention.self.{n}.{{p}}" for n in ("query", "key", "value")),
    ),
    ("encoder.layers.{i}.attn.out.{p}", _L + "attention.output.dense.{p}"),
    ("encoder.layers.{i}.attn_norm.{p}", _L + "attention.output.LayerNorm.{p}"),
    ("encoder.layers.{i}.ffn.up.{p}", _L + "intermediate.dense.{p}"),
    ("encoder.layers.{i}.ffn.down.{p}", _L + "output.dense.{p}"),
    ("encoder.layers.{i}.ffn_norm.{p}", _L + "output.LayerNorm.{p}"),
    ("encoder.pooler.dense.{p}", "pooler.dense.{p}"),
)

# Task heads that end in one `classifier` Linear (and QA's `qa_outputs`).
BERT_TASK_KEYS = MappingProxyType(
    {
        "sequence_classification": (("head.out.{p}", "classifier.{p}"),),
        "token_classification": (("head.out.{p}", "classifier.{p}"),),
        "question_answering": (("head.out.{p}", "qa_outputs.{p}"),),
        "multiple_choice": (("head.out.{p}", "classifier.{p}"),),
    }
)

BERT = Family(
    name="bert",
    doc="BERT: WordPiece, absolute positions, two token types, MLM + next-sentence heads",
    tokenizer="wordpiece",
    recipe="bert-base",
    hf=HFLayout(
        model_type="bert",
        class_prefix="Bert",
        base_prefix="bert.",
        config=HFConfig(
            fields=BERT_FIELDS,
            expect=MappingProxyType({"position_embedding_type": ("absolute",)}),
            write=MappingProxyType({"position_embedding_type": "absolute"}),
        ),
        encoder_keys=BERT_ENCODER_KEYS,
        head_keys=MappingProxyType(
            {
                "mlm": (
                    ("mlm.transform.{p}", "cls.predictions.transform.dense.{p}"),
                    ("mlm.norm.{p}", "cls.predictions.transform.LayerNorm.{p}"),
                    ("mlm.bias", "cls.predictions.bias"),
                ),
                "nsp": (("nsp.classifier.{p}", "cls.seq_relationship.{p}"),),
                **BERT_TASK_KEYS,
            }
        ),
        pretraining=MappingProxyType(
            {frozenset({"mlm"}): "ForMaskedLM", frozenset({"mlm", "nsp"}): "ForPreTraining"}
        ),
        # A buffer, and the MLM decoder, which is tied to the word embeddings (weight) and to
        # `cls.predictions.bias` (bias).
        ignored=(
            "embeddings.position_ids",
            "embeddings.token_type_ids",
            "cls.predictions.decoder.weight",
            "cls.predictions.decoder.bias",
        ),
        dropout_fields=MappingProxyType(
            {
                "sequence_classification": "classifier_dropout",
                "token_classification": "classifier_dropout",
                "multiple_choice": "classifier_dropout",
            }
        ),
        tokenizer_class="BertTokenizer",
    ),
)
