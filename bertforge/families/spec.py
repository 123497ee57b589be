"""What a model family is, as a value: its encoder settings, the shape of each head, its
tokenizer and recipe, and its Hugging Face layout.

A family is data, not code: `heads/` reads `Family.heads` to build the right head for a task,
`interop/hf/` reads `Family.hf` to translate config.json and weight names, pretraining reads
`Family.config` and `Family.recipe`. A derived family is its parent plus the fields that
differ (`dataclasses.replace`), e.g. RoBERTa is BERT with a position offset, one token type,
a BPE tokenizer and its own classification head.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bertforge.config import PRESETS, EncoderConfig
from bertforge.errors import ConfigError

# Task kinds a task head serves (the HF class suffix is `For` + the kind in CamelCase).
TASK_KINDS = (
    "sequence_classification",
    "token_classification",
    "question_answering",
    "multiple_choice",
)


@dataclass(frozen=True)
class Classifier:
    """How one vector of logits per input is read off the encoder.

    pooled: dropout -> Linear on the encoder's pooler output (BERT).
    otherwise: the first token (or the mean of the real ones, as the config's
    `classifier_pooling` says) -> [dropout ->] dense -> activation [-> LayerNorm] -> dropout
    -> Linear (RoBERTa, ELECTRA, DistilBERT; ModernBERT with the norm), with a dense layer of
    the head's own. The config's `head_activation`, when set, replaces `activation`.
    """

    pooled: bool
    activation: str = "tanh"
    dropout_first: bool = True  # also a dropout before the dense (RoBERTa, ELECTRA)
    norm: bool = False  # a LayerNorm after the activation (ModernBERT)


POOLED = Classifier(pooled=True)


@dataclass(frozen=True)
class Heads:
    """The shape of every head a family has, as its HF classes define them."""

    sequence: Classifier = POOLED
    choice: Classifier = POOLED
    qa_dropout: bool = False  # dropout before the span logits (DistilBERT)
    pair_dropout: float | None = None  # dropout before the NSP/SOP logits (ALBERT: 0.1)
    mlm_activation: str | None = None  # the MLM transform's activation; None: hidden_act
    # Token and span heads run the sequence head's dense -> act -> LayerNorm on every token
    # before their Linear (ModernBERT).
    token_transform: bool = False
    # The default dropout of each task head; None: the encoder's hidden_dropout_prob.
    dropout: Mapping[str, float | None] = field(default_factory=lambda: MappingProxyType({}))


# A key rule pairs one of our parameter names with one HF name, or with several HF tensors we
# store fused (query/key/value -> qkv). `{i}` is a layer index, `{p}` weight or bias; HF
# names may use `{g}`/`{j}` (group, layer in group) where blocks are shared (ALBERT).
Rule = tuple[str, str | tuple[str, ...]]


@dataclass(frozen=True)
class HFConfig:
    """config.json <-> EncoderConfig.

    `fields` are ours; `renames` gives the HF name of those spelled differently. `fixed` are
    our values the family implies without a config.json field (DistilBERT has no token
    types), `derived` computes ours from the others (RoBERTa's position offset), `expect`
    lists the only values an HF field may have, `write` constant fields transformers wants.
    """

    fields: tuple[str, ...]
    required: tuple[str, ...] = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
    )
    renames: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    expect: Mapping[str, tuple[Any, ...]] = field(default_factory=lambda: MappingProxyType({}))
    write: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Our fields the HF side stores only when they differ from hidden_size (ELECTRA's E).
    none_when_hidden: tuple[str, ...] = ()
    # Fields the family stores in a shape of its own (ModernBERT's nested rope_parameters):
    # `read` takes the whole config.json and returns ours, `written` the reverse.
    read: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    written: Callable[[dict[str, Any]], dict[str, Any]] | None = None


@dataclass(frozen=True)
class HFLayout:
    """Everything `interop/hf` needs to read and write this family's checkpoints."""

    model_type: str
    class_prefix: str  # "Bert": BertModel, BertForMaskedLM, ...
    base_prefix: str  # where head models nest the encoder: "bert."
    config: HFConfig
    encoder_keys: tuple[Rule, ...]
    # Rules per head part ("mlm", "nsp", "rtd") and per task kind (TASK_KINDS).
    head_keys: Mapping[str, tuple[Rule, ...]]
    # Pretraining part sets -> class suffix ({"mlm", "nsp"} -> "ForPreTraining").
    pretraining: Mapping[frozenset[str], str]
    ignored: tuple[str, ...] = ()  # HF keys that are not parameters of ours (buffers, ties)
    # The config.json field holding each task head's dropout (None: it has none of its own).
    dropout_fields: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))
    tokenizer_class: str | None = None  # tokenizer_config.json class for a canonical tokenizer
    # Task-head parameters HF fills from the pretraining head of the same name when a task
    # model starts from a pretraining checkpoint (ModernBERT's `head.dense`): ours -> ours.
    head_from_mlm: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Family:
    name: str  # the HF model_type
    doc: str  # one line: what this family is
    hf: HFLayout
    heads: Heads = Heads()
    tokenizer: str = "wordpiece"  # the tokenizer kind its checkpoints ship
    # What `train_tokenizer` takes besides the kind to make one (DeBERTa's Unigram style).
    tokenizer_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    recipe: str | None = None  # its default pretraining recipe: a packaged name (`--config NAME`)
    # EncoderConfig fields a fresh model of this family takes over a size preset.
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Fields computed from the others for a fresh model (RoBERTa: positions past the pad id).
    fresh: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    pair_head: bool = True  # whether its pretraining model has an NSP/SOP head

    def __repr__(self) -> str:
        return f"Family({self.name!r})"

    def config(self, preset: str = "base", **overrides: Any) -> EncoderConfig:
        """A fresh config: a size preset (the family's own, else BERT's), the family's
        defaults, then `overrides` (vocab_size, pad_token_id, ...)."""
        sizes = {**PRESETS, **self.presets}
        if preset not in sizes:
            raise ConfigError(
                f"unknown preset {preset!r} for {self.name}; choose one of {', '.join(sizes)}"
            )
        base = EncoderConfig().to_dict()
        fields = {**base, **sizes[preset], **self.defaults, **overrides, "model_type": self.name}
        if self.fresh is not None:
            fields |= {k: v for k, v in self.fresh(fields).items() if k not in overrides}
        return EncoderConfig.from_dict(fields, source=f"{self.name} preset {preset!r}")
