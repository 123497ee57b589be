"""The dropout -> Linear(H, C) pair every classification head ends with (HF semantics)."""

from __future__ import annotations

from torch import nn

from bertforge.config import EncoderConfig
from bertforge.models.init import init_weights


def classifier_layers(
    config: EncoderConfig, out_features: int, classifier_dropout: float | None
) -> tuple[nn.Dropout, nn.Linear]:
    """Dropout (`classifier_dropout`, else the encoder's hidden dropout) and an initialised
    Linear(H, out_features)."""
    p = config.hidden_dropout_prob if classifier_dropout is None else classifier_dropout
    linear = nn.Linear(config.hidden_size, out_features)
    init_weights(linear, config.initializer_range)
    return nn.Dropout(p), linear
