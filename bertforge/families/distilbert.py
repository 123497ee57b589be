"""DistilBERT (Sanh et al., 2019): a 6-layer BERT without token types or pooler, with its own
key names and a pre_classifier -> ReLU classification head. `heads/student.py` builds one
from every other layer of a BERT teacher."""

from __future__ import annotations

from types import MappingProxyType

from bertforge.families.bert import EMBEDDING_KEYS
from bertforge.families.spec import Classifier, Family, Heads, HFConfig, HFLayout

_L = "transformer.layer.{i}."
_FIRST_RELU = Classifier(pooled=False, activation="relu", dropout_first=False)

DISTILBERT = Family(
    name="distilbert",
    doc="DistilBERT: 6 layers, no token types, no pooler; a distilled BERT",
    tokenizer="wordpiece",
    recipe=None,  # trained by distillation from a teacher, not from a recipe
    defaults=MappingProxyType({"type_vocab_size": 0, "num_hidden_layers": 6}),
    pair_head=False,
    heads=Heads(
        sequence=_FIRST_RELU,
        choice=_FIRST_RELU,
        qa_dropout=True,
        dropout=MappingProxyType(
            {"sequence_classification": 0.2, "multiple_choice": 0.2, "question_answering": 0.1}
        ),
    ),
    hf=HFLayout(
        model_type="distilbert",
        class_prefix="DistilBert",
        base_prefix="distilbert.",
        config=HFConfig(
            fields=(
                "vocab_size",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "hidden_act",
                "max_position_embeddings",
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
                "initializer_range",
                "pad_token_id",
            ),
            renames=MappingProxyType(
                {
                    "hidden_size": "dim",
                    "num_hidden_layers": "n_layers",
                    "num_attention_heads": "n_heads",
                    "intermediate_size": "hidden_dim",
                    "hidden_act": "activation",
                    "hidden_dropout_prob": "dropout",
                    "attention_probs_dropout_prob": "attention_dropout",
                }
            ),
            # No token types; DistilBERT's LayerNorms are built with eps 1e-12 whatever the config.
            fixed=MappingProxyType({"type_vocab_size": 0, "layer_norm_eps": 1e-12}),
            expect=MappingProxyType({"sinusoidal_pos_embds": (False,)}),
            write=MappingProxyType({"sinusoidal_pos_embds": False}),
        ),
        encoder_keys=(
            *EMBEDDING_KEYS,
            (
                "encoder.layers.{i}.attn.qkv.{p}",
                tuple(_L + f"attention.{n}_lin.{{p}}" for n in ("q", "k", "v")),
            ),
            ("encoder.layers.{i}.attn.out.{p}", _L + "attention.out_lin.{p}"),
            ("encoder.layers.{i}.attn_norm.{p}", _L + "sa_layer_norm.{p}"),
            ("encoder.layers.{i}.ffn.up.{p}", _L + "ffn.lin1.{p}"),
            ("encoder.layers.{i}.ffn.down.{p}", _L + "ffn.lin2.{p}"),
            ("encoder.layers.{i}.ffn_norm.{p}", _L + "output_layer_norm.{p}"),
        ),
        head_keys=MappingProxyType(
            {
                "mlm": (
                    ("mlm.transform.{p}", "vocab_transform.{p}"),
                    ("mlm.norm.{p}", "vocab_layer_norm.{p}"),
                    ("mlm.bias", "vocab_projector.bias"),
                ),
                "sequence_classification": (
                    ("head.dense.{p}", "pre_classifier.{p}"),
                    ("head.out.{p}", "classifier.{p}"),
                ),
                "token_classification": (("head.out.{p}", "classifier.{p}"),),
                "question_answering": (("head.out.{p}", "qa_outputs.{p}"),),
                "multiple_choice": (
                    ("head.dense.{p}", "pre_classifier.{p}"),
                    ("head.out.{p}", "classifier.{p}"),
                ),
            }
        ),
        pretraining=MappingProxyType({frozenset({"mlm"}): "ForMaskedLM"}),
        ignored=("embeddings.position_ids", "vocab_projector.weight"),
        dropout_fields=MappingProxyType(
            {
                "sequence_classification": "seq_classif_dropout",
                "multiple_choice": "seq_classif_dropout",
                "question_answering": "qa_dropout",
            }
        ),
        tokenizer_class="DistilBertTokenizer",
    ),
)
