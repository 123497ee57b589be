"""Position-wise feed-forward network."""

from __future__ import annotations

import torch
from torch import nn

from bertforge.activations import ACTIVATIONS
from bertforge.config import EncoderConfig


class FeedForward(nn.Module):
    """H -> intermediate -> H."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., H) -> (..., H)
        return self.down(self.act(self.up(x)))
