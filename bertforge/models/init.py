"""Weight initialisation shared by every model and head (BERT's truncated-normal-free recipe)."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, std: float) -> None:
    """N(0, std) for weights, zeros for biases, identity LayerNorm; the pad row stays zero."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
