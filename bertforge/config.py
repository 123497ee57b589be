"""Encoder configuration and named presets.

Field names follow Hugging Face's `BertConfig` where one exists (so a `config.json` maps
almost one to one); the variant switches (`embedding_size`, `position`, `position_offset`,
`num_hidden_groups`) make the other families out of the same components: a family is a
preset plus composition, never a copied encoder (docs/design.md).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any

from bertforge.activations import ACTIVATIONS
from bertforge.errors import ConfigError

POSITIONS = ("absolute", "relative", "rotary", "disentangled", "none")
RELATIVE_TERMS = ("c2p", "p2c")  # DeBERTa's content-to-position and position-to-content
NORM_PLACEMENTS = ("post", "pre")
FEED_FORWARDS = ("mlp", "glu")
# Attention pattern of a layer, with HF's names: every key, or the keys within a window.
LAYER_TYPES = ("full_attention", "sliding_attention")
POOLINGS = ("cls", "mean")


@dataclass
class EncoderConfig:
    """Shape and behaviour of a BERT-family encoder."""

    model_type: str = "bert"  # the family, as HF's config.json names it
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    pad_token_id: int = 0
    # Factorized embeddings (ALBERT, ELECTRA): tokens live in `embedding_size` dims and a
    # linear map lifts them to `hidden_size`. None: embeddings of `hidden_size`, no map.
    embedding_size: int | None = None
    # How positions enter the model: learned absolute embeddings (BERT), functional relative
    # positions in attention (NEZHA), or none at all.
    position: str = "absolute"
    # Absolute positions count from here (RoBERTa: pad_token_id + 1, with padding at
    # pad_token_id): the first `position_offset` rows of the table are never a real token's.
    position_offset: int = 0
    # Relative distances are clipped to [-max_relative_position, max_relative_position] (NEZHA;
    # DeBERTa's disentangled attention: the span its log buckets reach).
    max_relative_position: int = 64
    # Disentangled attention (DeBERTa): distances in `position_buckets` log buckets either side
    # (0: exact distances up to max_relative_position), the score terms beside content-to-
    # content, whether the distance embeddings go through the key/query projections
    # (share_att_key) or their own, and a LayerNorm over the distance embeddings.
    position_buckets: int = 0
    pos_att_type: list[str] = dataclasses.field(default_factory=lambda: list(RELATIVE_TERMS))
    share_att_key: bool = False
    relative_norm: bool = False
    # Cross-layer sharing (ALBERT): `num_hidden_groups` groups of `inner_group_num` blocks;
    # layer i runs group i * groups // layers. None: every layer its own block (BERT).
    num_hidden_groups: int | None = None
    inner_group_num: int = 1
    # Rotary positions (ModernBERT): the frequency base of full-attention layers and of
    # sliding-window layers (None: the same).
    rope_theta: float = 10000.0
    local_rope_theta: float | None = None
    # Where the LayerNorms sit: after each residual add (post, BERT), or before attention and
    # feed-forward with a final norm after the last layer (pre, ModernBERT; the first layer
    # has no attention norm: its input is the normalised embedding).
    norm_placement: str = "post"
    # The feed-forward: Linear -> act -> Linear (mlp), or a gated linear unit (glu:
    # act(x W_in) * (x W_gate) -> W_out; GeGLU with gelu), `intermediate_size` wide.
    feed_forward: str = "mlp"
    attention_bias: bool = True  # biases of the QKV and output projections
    mlp_bias: bool = True  # biases of the feed-forward's Linears
    norm_bias: bool = True  # LayerNorm biases
    # Per layer, which keys a query attends to: all (full_attention) or those at most
    # local_attention / 2 positions away (sliding_attention). None: all layers full.
    layer_types: list[str] | None = None
    local_attention: int | None = None  # the sliding window's width W, in tokens (even)
    # Dropout after the embedding norm; None: hidden_dropout_prob (BERT's single rate).
    embedding_dropout_prob: float | None = None
    # Heads that pool the sequence (ModernBERT): the first token or the mean of the real ones.
    classifier_pooling: str = "cls"
    # The heads' dense transform (MLM; ModernBERT's task heads): its activation (None: the
    # family's choice) and whether it has a bias; whether the MLM decoder has one.
    head_activation: str | None = None
    head_bias: bool = True
    decoder_bias: bool = True

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size or self.hidden_size

    @property
    def max_length(self) -> int:
        """The longest input the model can embed, in tokens (specials included): the learned
        positions past the offset, the relative-position table's length, or no limit."""
        if self.position == "absolute":
            return self.max_position_embeddings - self.position_offset
        if self.position in ("relative", "rotary", "disentangled"):
            return self.max_position_embeddings
        return sys.maxsize

    @property
    def num_blocks(self) -> int:
        """Distinct transformer blocks (parameters): fewer than the layers when shared."""
        return (self.num_hidden_groups or self.num_hidden_layers) * self.inner_group_num

    def block_order(self) -> list[int]:
        """Which block each applied layer is, in order: `num_hidden_layers * inner_group_num`
        entries, as HF ALBERT runs its groups (identity for BERT)."""
        groups, inner = self.num_hidden_groups or self.num_hidden_layers, self.inner_group_num
        layers = self.num_hidden_layers
        return [(i * groups // layers) * inner + j for i in range(layers) for j in range(inner)]

    def layer_type(self, block: int) -> str:
        """The attention pattern of a block (shared blocks are never windowed)."""
        return self.layer_types[block] if self.layer_types else "full_attention"

    @property
    def window(self) -> int | None:
        """How far a sliding-window layer looks either side (|i - j| <= window), or None."""
        if not self.layer_types or "sliding_attention" not in self.layer_types:
            return None
        assert self.local_attention is not None
        return self.local_attention // 2

    def validate(self) -> None:
        """Raise `ConfigError` naming the first inconsistent field."""
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(
                    f"config field '{name}' must be a positive integer, got {value!r}"
                )
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}; pick a head count that divides it"
            )
        if not isinstance(self.type_vocab_size, int) or self.type_vocab_size < 0:
            raise ConfigError(f"type_vocab_size must be >= 0, got {self.type_vocab_size!r}")
        if self.embedding_size is not None and self.embedding_size <= 0:
            raise ConfigError(f"embedding_size must be positive or null, got {self.embedding_size}")
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(
                f"unknown hidden_act {self.hidden_act!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        if self.position not in POSITIONS:
            raise ConfigError(
                f"unknown position {self.position!r}; choose one of {', '.join(POSITIONS)}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {p}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"pad_token_id={self.pad_token_id} is outside the vocabulary "
                f"(vocab_size={self.vocab_size})"
            )
        if self.layer_norm_eps <= 0:
            raise ConfigError(f"layer_norm_eps must be positive, got {self.layer_norm_eps}")
        if not 0 <= self.position_offset < self.max_position_embeddings:
            raise ConfigError(
                f"position_offset={self.position_offset} leaves no position of the "
                f"{self.max_position_embeddings} for a token"
            )
        if self.max_relative_position < 1:
            raise ConfigError(
                f"max_relative_position must be >= 1, got {self.max_relative_position}"
            )
        groups = self.num_hidden_groups
        if groups is not None and not 1 <= groups <= self.num_hidden_layers:
            raise ConfigError(
                f"num_hidden_groups={groups} must be between 1 and num_hidden_layers="
                f"{self.num_hidden_layers}"
            )
        if self.inner_group_num < 1:
            raise ConfigError(f"inner_group_num must be >= 1, got {self.inner_group_num}")
        self._validate_components()

    def _validate_components(self) -> None:
        for name, value, allowed in (
            ("norm_placement", self.norm_placement, NORM_PLACEMENTS),
            ("feed_forward", self.feed_forward, FEED_FORWARDS),
            ("classifier_pooling", self.classifier_pooling, POOLINGS),
            ("head_activation", self.head_activation, (None, *ACTIVATIONS)),
        ):
            if value not in allowed:
                shown = ", ".join(str(a) for a in allowed)
                raise ConfigError(f"unknown {name} {value!r}; choose one of {shown}")
        for name in ("rope_theta", "local_rope_theta"):
            theta = getattr(self, name)
            if theta is not None and not theta > 0:
                raise ConfigError(f"{name} must be positive, got {theta!r}")
        unknown = sorted(set(self.pos_att_type) - set(RELATIVE_TERMS))
        if unknown or not isinstance(self.pos_att_type, list):
            raise ConfigError(
                f"pos_att_type {self.pos_att_type!r}: a list of {', '.join(RELATIVE_TERMS)}"
            )
        if self.position_buckets < 0:
            raise ConfigError(f"position_buckets must be >= 0, got {self.position_buckets}")
        if self.embedding_dropout_prob is not None and not 0 <= self.embedding_dropout_prob < 1:
            raise ConfigError(
                f"embedding_dropout_prob must be in [0, 1), got {self.embedding_dropout_prob}"
            )
        self._validate_layer_types()

    def _validate_layer_types(self) -> None:
        types = self.layer_types
        if types is None:
            return
        if not isinstance(types, list) or len(types) != self.num_hidden_layers:
            raise ConfigError(
                f"layer_types must list one of {', '.join(LAYER_TYPES)} per layer "
                f"({self.num_hidden_layers}), got {types!r}"
            )
        unknown = sorted({t for t in types if t not in LAYER_TYPES})
        if unknown:
            raise ConfigError(
                f"unknown layer_types {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(LAYER_TYPES)}"
            )
        if self.num_blocks != self.num_hidden_layers:
            raise ConfigError("layer_types cannot be combined with shared blocks (ALBERT groups)")
        if "sliding_attention" in types:
            w = self.local_attention
            if not isinstance(w, int) or isinstance(w, bool) or w < 2 or w % 2:
                raise ConfigError(
                    f"local_attention={w!r}: a sliding window must be an even number of tokens "
                    "(W / 2 either side of a token), e.g. 128"
                )

    def check_vocab(self, tokenizer_vocab_size: int, source: str) -> None:
        """A tokenizer may emit any id below its vocab size; the embedding must cover them all."""
        if tokenizer_vocab_size > self.vocab_size:
            raise ConfigError(
                f"{source}: the tokenizer has {tokenizer_vocab_size} tokens but the model's "
                f"embedding matrix has only {self.vocab_size} rows; use the tokenizer the model "
                "was trained with, or resize the embeddings"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "config") -> EncoderConfig:
        """Build from a plain dict; unknown keys are an error (typos must not pass silently)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; "
                f"valid keys: {', '.join(sorted(names))}"
            )
        return cls(**d)

    def replace(self, **changes: Any) -> EncoderConfig:
        return dataclasses.replace(self, **changes)


def _size(layers: int, hidden: int, heads: int) -> dict[str, int]:
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "intermediate_size": 4 * hidden,
    }


# The 24 compact BERTs (Turc et al., 2019) use 64-dim heads; base/large are the paper sizes.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": _size(2, 128, 2),
    "mini": _size(4, 256, 4),
    "small": _size(4, 512, 8),
    "medium": _size(8, 512, 8),
    "base": _size(12, 768, 12),
    "large": _size(24, 1024, 16),
}
