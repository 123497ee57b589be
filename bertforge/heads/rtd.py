"""Replaced-token detection head (ELECTRA's discriminator): per token, one logit that it was
replaced by the generator."""

from __future__ import annotations

import torch
from torch import nn

from bertforge.activations import ACTIVATIONS
from bertforge.config import EncoderConfig


class RTDHead(nn.Module):
    """(B, T, H) -> (B, T): dense -> activation -> Linear(H, 1)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.out = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.dense(hidden))).squeeze(-1)
