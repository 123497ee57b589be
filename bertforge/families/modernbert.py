"""ModernBERT (Warner et al., 2024): pre-LN, rotary positions with one theta for global and one
for local layers, GeGLU feed-forward, no biases, every third layer global and the others a
sliding window of 128 tokens, no token types, no pooler; task heads put a dense -> GELU ->
LayerNorm on the first token (or the mean), and on every token for tagging and QA.

transformers 5 writes the attention pattern as `layer_types` and the thetas in a nested
`rope_parameters`; configs of 4.x name them `global_attn_every_n_layers`, `global_rope_theta`
and `local_rope_theta`. Both read; the 5.x form is written.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from bertforge.errors import CheckpointError
from bertforge.families.spec import TASK_KINDS, Classifier, Family, Heads, HFConfig, HFLayout

FULL, SLIDING = "full_attention", "sliding_attention"
THETAS = {FULL: 160_000.0, SLIDING: 10_000.0}  # ModernBertConfig's defaults


def every_nth_global(layers: int, n: int = 3) -> list[str]:
    """Layer i attends globally when i % n == 0, within the window otherwise."""
    return [SLIDING if i % n else FULL for i in range(layers)]


def _read(hf: dict[str, Any]) -> dict[str, Any]:
    """The attention pattern and rotary thetas, from either config.json layout."""
    layers = hf.get("layer_types")
    if layers is None:
        layers = every_nth_global(hf["num_hidden_layers"], hf.get("global_attn_every_n_layers", 3))
    rope = hf.get("rope_parameters") or {}
    legacy = {FULL: "global_rope_theta", SLIDING: "local_rope_theta"}
    thetas = {}
    for kind in (FULL, SLIDING):
        params = rope.get(kind) or {}
        if params.get("rope_type", "default") != "default":
            raise CheckpointError(
                f"rope_parameters.{kind}.rope_type={params['rope_type']!r}: only the default "
                "(unscaled) rotary embedding is supported"
            )
        thetas[kind] = float(params.get("rope_theta", hf.get(legacy[kind], THETAS[kind])))
    return {
        "layer_types": list(layers),
        "rope_theta": thetas[FULL],
        "local_rope_theta": thetas[SLIDING],
    }


def _written(ours: dict[str, Any]) -> dict[str, Any]:
    full = ours["rope_theta"]
    local = ours["local_rope_theta"] or full
    return {
        "layer_types": ours["layer_types"] or [FULL] * ours["num_hidden_layers"],
        "rope_parameters": {
            FULL: {"rope_type": "default", "rope_theta": full},
            SLIDING: {"rope_type": "default", "rope_theta": local},
        },
    }


# What every ModernBERT is: its config.json never states these.
COMPONENTS = {"position": "rotary", "norm_placement": "pre", "feed_forward": "glu",
              "type_vocab_size": 0}  # fmt: skip
SIZED = ("pad_token_id", "intermediate_size")
# ModernBertConfig's defaults, for the fields a config.json may leave out.
CLASS_DEFAULTS = {
    "pad_token_id": 50283,
    "intermediate_size": 1152,
    "max_position_embeddings": 8192,
    "layer_norm_eps": 1e-5,
    "attention_bias": False,
    "mlp_bias": False,
    "norm_bias": False,
    "head_bias": False,
    "head_activation": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "embedding_dropout_prob": 0.0,
    "local_attention": 128,
}


def _class_defaults(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: fields.get(k, v) for k, v in CLASS_DEFAULTS.items()}


def _fresh(fields: dict[str, Any]) -> dict[str, Any]:
    """A fresh model's pattern follows its depth."""
    return {"layer_types": every_nth_global(fields["num_hidden_layers"])}


# dense -> GELU -> LayerNorm on the pooled token; its activation is the config's.
_HEAD = Classifier(pooled=False, activation="gelu", dropout_first=False, norm=True)
_TASK_KEYS = (
    ("head.dense.{p}", "head.dense.{p}"),
    ("head.norm.{p}", "head.norm.{p}"),
    ("head.out.{p}", "classifier.{p}"),
)

MODERNBERT = Family(
    name="modernbert",
    doc="ModernBERT: pre-LN, rotary, GeGLU, alternating global/local attention, no biases",
    tokenizer="bpe",
    recipe="modernbert-base",
    # A fresh model: the components, then ModernBertConfig's defaults (its own ids and width
    # aside: the tokenizer and the size preset give those).
    defaults=MappingProxyType(
        {
            **COMPONENTS,
            "hidden_act": "gelu",
            "rope_theta": THETAS[FULL],
            "local_rope_theta": THETAS[SLIDING],
            **{k: v for k, v in CLASS_DEFAULTS.items() if k not in SIZED},
        }
    ),
    fresh=_fresh,
    # The published sizes, and two small ones of the same proportions (64-dim heads, a GLU
    # 1.5x the width) whose layers cost about what BERT-tiny's and BERT-mini's do.
    presets=MappingProxyType(
        {
            "tiny": {
                "num_hidden_layers": 3,
                "hidden_size": 128,
                "num_attention_heads": 2,
                "intermediate_size": 192,
            },
            "mini": {
                "num_hidden_layers": 6,
                "hidden_size": 256,
                "num_attention_heads": 4,
                "intermediate_size": 384,
            },
            "base": {
                "num_hidden_layers": 22,
                "hidden_size": 768,
                "num_attention_heads": 12,
                "intermediate_size": 1152,
            },
            "large": {
                "num_hidden_layers": 28,
                "hidden_size": 1024,
                "num_attention_heads": 16,
                "intermediate_size": 2624,
            },
        }
    ),
    pair_head=False,
    heads=Heads(
        sequence=_HEAD,
        choice=_HEAD,
        qa_dropout=True,
        token_transform=True,
        dropout=MappingProxyType(dict.fromkeys(TASK_KINDS, 0.0)),
    ),
    hf=HFLayout(
        model_type="modernbert",
        class_prefix="ModernBert",
        base_prefix="model.",
        config=HFConfig(
            fields=(
                "vocab_size",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "hidden_act",
                "max_position_embeddings",
                "layer_norm_eps",
                "initializer_range",
                "pad_token_id",
                "attention_bias",
                "mlp_bias",
                "norm_bias",
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
                "embedding_dropout_prob",
                "local_attention",
                "classifier_pooling",
                "head_activation",
                "head_bias",
                "decoder_bias",
            ),
            renames=MappingProxyType(
                {
                    "hidden_act": "hidden_activation",
                    "layer_norm_eps": "norm_eps",
                    "hidden_dropout_prob": "mlp_dropout",
                    "attention_probs_dropout_prob": "attention_dropout",
                    "embedding_dropout_prob": "embedding_dropout",
                    "head_activation": "classifier_activation",
                    "head_bias": "classifier_bias",
                }
            ),
            fixed=MappingProxyType(COMPONENTS),
            derived=_class_defaults,
            read=_read,
            written=_written,
            expect=MappingProxyType({"tie_word_embeddings": (True,)}),
        ),
        encoder_keys=(
            ("encoder.embeddings.tokens.weight", "embeddings.tok_embeddings.weight"),
            ("encoder.embeddings.norm.{p}", "embeddings.norm.{p}"),
            ("encoder.layers.{i}.attn_norm.{p}", "layers.{i}.attn_norm.{p}"),
            ("encoder.layers.{i}.attn.qkv.{p}", "layers.{i}.attn.Wqkv.{p}"),
            ("encoder.layers.{i}.attn.out.{p}", "layers.{i}.attn.Wo.{p}"),
            ("encoder.layers.{i}.ffn_norm.{p}", "layers.{i}.mlp_norm.{p}"),
            ("encoder.layers.{i}.ffn.up.{p}", "layers.{i}.mlp.Wi.{p}"),
            ("encoder.layers.{i}.ffn.down.{p}", "layers.{i}.mlp.Wo.{p}"),
            ("encoder.final_norm.{p}", "final_norm.{p}"),
        ),
        head_keys=MappingProxyType(
            {
                "mlm": (
                    ("mlm.transform.{p}", "head.dense.{p}"),
                    ("mlm.norm.{p}", "head.norm.{p}"),
                    ("mlm.bias", "decoder.bias"),
                ),
                **dict.fromkeys(TASK_KINDS, _TASK_KEYS),
            }
        ),
        pretraining=MappingProxyType({frozenset({"mlm"}): "ForMaskedLM"}),
        ignored=("decoder.weight",),  # tied to the token embeddings
        dropout_fields=MappingProxyType(dict.fromkeys(TASK_KINDS, "classifier_dropout")),
        tokenizer_class="PreTrainedTokenizerFast",
        head_from_mlm=MappingProxyType(
            {"head.dense.": "mlm.transform.", "head.norm.": "mlm.norm."}
        ),
    ),
)
