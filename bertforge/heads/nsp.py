"""Next-sentence (BERT) / sentence-order (ALBERT) prediction head: two classes from the pooler."""

from __future__ import annotations

import torch
from torch import nn


class NSPHead(nn.Module):
    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # (B, H) -> (B, 2)
        return self.classifier(pooled)
