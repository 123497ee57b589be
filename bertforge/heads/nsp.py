"""Sentence-pair head: next-sentence (BERT) or sentence-order (ALBERT) prediction, two classes
from the pooler output."""

from __future__ import annotations

import torch
from torch import nn


class NSPHead(nn.Module):
    def __init__(self, hidden_size: int, dropout: float | None = None) -> None:
        super().__init__()
        # ALBERT's SOP head drops out the pooled vector first; BERT's does not.
        self.dropout = nn.Dropout(dropout) if dropout is not None else nn.Identity()
        self.classifier = nn.Linear(hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # (B, H) -> (B, 2)
        return self.classifier(self.dropout(pooled))
