"""ELECTRA (Clark et al., 2020): BERT-shaped encoders with embeddings of their own size
(`embeddings_project` lifts E to H), no pooler; the discriminator detects replaced tokens,
the generator is a small masked LM, and the two may share their embeddings."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

from bertforge.families.bert import BERT, BERT_ENCODER_KEYS, BERT_FIELDS, BERT_TASK_KEYS
from bertforge.families.spec import Classifier, Heads


def _no_map_at_hidden_size(fields: dict[str, Any]) -> dict[str, Any]:
    """ELECTRA lifts its embeddings to H only when they are smaller: E == H means no map."""
    same = fields.get("embedding_size") == fields["hidden_size"]
    return {"embedding_size": None} if same else {}


ELECTRA = replace(
    BERT,
    name="electra",
    doc="ELECTRA: replaced-token detection (discriminator) and a small MLM generator",
    recipe="electra-small",
    defaults=MappingProxyType({"embedding_size": 128}),
    fresh=_no_map_at_hidden_size,
    # ELECTRA-small (Clark et al., Table 6); base/large are BERT's sizes.
    presets=MappingProxyType(
        {
            "small": {
                "num_hidden_layers": 12,
                "hidden_size": 256,
                "num_attention_heads": 4,
                "intermediate_size": 1024,
            }
        }
    ),
    pair_head=False,
    heads=Heads(
        sequence=Classifier(pooled=False, activation="gelu", dropout_first=True),
        choice=Classifier(pooled=False, activation="gelu", dropout_first=False),
        mlm_activation="gelu",
        dropout=MappingProxyType({"multiple_choice": 0.1}),  # summary_last_dropout
    ),
    hf=replace(
        BERT.hf,
        model_type="electra",
        class_prefix="Electra",
        base_prefix="electra.",
        config=replace(
            BERT.hf.config,
            fields=(*BERT_FIELDS, "embedding_size"),
            none_when_hidden=("embedding_size",),
        ),
        encoder_keys=(
            *BERT_ENCODER_KEYS,
            ("encoder.embeddings.project.{p}", "embeddings_project.{p}"),
        ),
        head_keys=MappingProxyType(
            {
                "mlm": (
                    ("mlm.transform.{p}", "generator_predictions.dense.{p}"),
                    ("mlm.norm.{p}", "generator_predictions.LayerNorm.{p}"),
                    ("mlm.bias", "generator_lm_head.bias"),
                ),
                "rtd": (
                    ("rtd.dense.{p}", "discriminator_predictions.dense.{p}"),
                    ("rtd.out.{p}", "discriminator_predictions.dense_prediction.{p}"),
                ),
                **BERT_TASK_KEYS,
                "sequence_classification": (
                    ("head.dense.{p}", "classifier.dense.{p}"),
                    ("head.out.{p}", "classifier.out_proj.{p}"),
                ),
                "multiple_choice": (
                    ("head.dense.{p}", "sequence_summary.summary.{p}"),
                    ("head.out.{p}", "classifier.{p}"),
                ),
            }
        ),
        pretraining=MappingProxyType(
            {frozenset({"mlm"}): "ForMaskedLM", frozenset({"rtd"}): "ForPreTraining"}
        ),
        ignored=(
            "embeddings.position_ids",
            "embeddings.token_type_ids",
            "generator_lm_head.weight",
        ),
        dropout_fields=MappingProxyType(
            {
                "sequence_classification": "classifier_dropout",
                "token_classification": "classifier_dropout",
                "multiple_choice": "summary_last_dropout",
            }
        ),
        tokenizer_class="ElectraTokenizer",
    ),
)
