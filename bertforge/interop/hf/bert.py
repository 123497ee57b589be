"""BERT (`model_type: "bert"`): config fields and the key map, ours <-> HF."""

from __future__ import annotations

from typing import Any

import torch

from bertforge.config import EncoderConfig
from bertforge.errors import CheckpointError
from bertforge.interop.hf.keymap import KeyMap

MODEL_TYPE = "bert"
BASE_PREFIX = "bert."  # head models nest the encoder under this prefix; BertModel does not
# Heads sit outside the encoder prefix: pretraining heads under `cls.`, task heads at the top.
HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.")

# Config fields whose HF name and meaning equal ours.
SHARED_FIELDS = (
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
REQUIRED_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")

_L = "encoder.layer.{i}."
KEYS = KeyMap(
    [
        ("encoder.embeddings.tokens.weight", "embeddings.word_embeddings.weight"),
        ("encoder.embeddings.positions.weight", "embeddings.position_embeddings.weight"),
        ("encoder.embeddings.segments.weight", "embeddings.token_type_embeddings.weight"),
        ("encoder.embeddings.norm.{p}", "embeddings.LayerNorm.{p}"),
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
        ("mlm.transform.{p}", "cls.predictions.transform.dense.{p}"),
        ("mlm.norm.{p}", "cls.predictions.transform.LayerNorm.{p}"),
        ("mlm.bias", "cls.predictions.bias"),
        ("nsp.classifier.{p}", "cls.seq_relationship.{p}"),
        ("classifier.{p}", "classifier.{p}"),
        ("qa.{p}", "qa_outputs.{p}"),
    ]
)

# Present in HF files but not parameters of ours: a buffer, and the MLM decoder, which is tied
# to the word embeddings (weight) and to `cls.predictions.bias` (bias).
IGNORED = (
    "embeddings.position_ids",
    "cls.predictions.decoder.weight",
    "cls.predictions.decoder.bias",
)

_LEGACY_LEAVES = {"gamma": "weight", "beta": "bias"}

# Which HF class a set of our top-level parts corresponds to.
ARCHITECTURES = {
    frozenset({"encoder"}): "BertModel",
    frozenset({"encoder", "mlm"}): "BertForMaskedLM",
    frozenset({"encoder", "mlm", "nsp"}): "BertForPreTraining",
}
# Task heads share parts (a `classifier` reads the pooler in sequence classification and every
# token in token classification), so they are named by their head kind instead.
HEAD_ARCHITECTURES = {
    "sequence_classification": (
        "BertForSequenceClassification",
        frozenset({"encoder", "classifier"}),
    ),
    "token_classification": ("BertForTokenClassification", frozenset({"encoder", "classifier"})),
    "question_answering": ("BertForQuestionAnswering", frozenset({"encoder", "qa"})),
    "multiple_choice": ("BertForMultipleChoice", frozenset({"encoder", "classifier"})),
}


def architecture(parts: frozenset[str], head: str | None) -> str:
    """The HF class name for a module with top-level `parts` and task-head kind `head`."""
    if head is None:
        if parts not in ARCHITECTURES:
            raise CheckpointError(f"no {MODEL_TYPE} HF architecture has parts {sorted(parts)}")
        return ARCHITECTURES[parts]
    if head not in HEAD_ARCHITECTURES:
        raise CheckpointError(f"no {MODEL_TYPE} HF architecture for head kind {head!r}")
    name, want = HEAD_ARCHITECTURES[head]
    if parts != want:
        raise CheckpointError(f"{name} has parts {sorted(want)}, this module {sorted(parts)}")
    return name


def head_of(hf: dict[str, Any]) -> str | None:
    """The task-head kind a config.json's `architectures` names, or None (no task head)."""
    names = hf.get("architectures") or []
    kinds = {name: kind for kind, (name, _) in HEAD_ARCHITECTURES.items()}
    return next((kinds[n] for n in names if n in kinds), None)


def strip_layout(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo the encoder prefix of head models and TF-era `gamma`/`beta` LayerNorm names."""
    out = {}
    for key, tensor in raw.items():
        stem, dot, leaf = key.rpartition(".")
        out[(stem + dot + _LEGACY_LEAVES.get(leaf, leaf)).removeprefix(BASE_PREFIX)] = tensor
    return out


def add_layout(state: dict[str, torch.Tensor], architecture: str) -> dict[str, torch.Tensor]:
    """Nest the encoder under `bert.` for every architecture but the bare `BertModel`."""
    if architecture == ARCHITECTURES[frozenset({"encoder"})]:
        return state
    return {k if k.startswith(HEAD_PREFIXES) else BASE_PREFIX + k: v for k, v in state.items()}


def config_from_hf(hf: dict[str, Any], source: str) -> dict[str, Any]:
    """HF config.json -> EncoderConfig fields (missing optional fields take BERT defaults)."""
    missing = [k for k in REQUIRED_FIELDS if k not in hf]
    if missing:
        raise CheckpointError(f"{source}: missing required key(s) {', '.join(missing)}")
    position = hf.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise CheckpointError(
            f"{source}: position_embedding_type={position!r} is not supported; "
            "BERT checkpoints load with 'absolute' positions"
        )
    return {k: hf[k] for k in SHARED_FIELDS if hf.get(k) is not None}


def config_to_hf(config: EncoderConfig, architecture: str) -> dict[str, Any]:
    if config.embedding_size not in (None, config.hidden_size) or config.position != "absolute":
        raise CheckpointError(
            "the BERT format cannot express embedding_size != hidden_size or position != "
            "'absolute'; save this model in its own family's format"
        )
    d = {k: getattr(config, k) for k in SHARED_FIELDS}
    return {
        "architectures": [architecture],
        "model_type": MODEL_TYPE,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        "dtype": "float32",
        **d,
    }
