"""Position-wise feed-forward networks: BERT's MLP and the gated linear unit (GeGLU with gelu,
Shazeer 2020) of ModernBERT."""

from __future__ import annotations

import torch
from torch import nn

from bertforge.activations import ACTIVATIONS
from bertforge.config import EncoderConfig
from bertforge.models.dropout import Dropout


class FeedForward(nn.Module):
    """H -> I -> H: down(drop(act(up(x)))). The inner dropout is the pre-LN block's (ModernBERT
    drops out here, not on the residual); post-LN blocks pass 0."""

    streams = 1  # how many I-wide outputs `up` makes

    def __init__(self, config: EncoderConfig, dropout: float = 0.0) -> None:
        super().__init__()
        bias, width = config.mlp_bias, config.intermediate_size
        self.up = nn.Linear(config.hidden_size, self.streams * width, bias=bias)
        self.act = ACTIVATIONS[config.hidden_act]
        self.dropout = Dropout(dropout)
        self.down = nn.Linear(width, config.hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., H) -> (..., H)
        return self.down(self.dropout(self.act(self.up(x))))


class GatedFeedForward(FeedForward):
    """H -> 2I -> I -> H: one GEMM makes the input and the gate, act(input) * gate goes down.
    With I = 2/3 of the MLP's width it costs what the MLP does."""

    streams = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., H) -> (..., H)
        value, gate = self.up(x).chunk(2, dim=-1)  # 2 x (..., I)
        return self.down(self.dropout(self.act(value) * gate))


FEED_FORWARDS = {"mlp": FeedForward, "glu": GatedFeedForward}
