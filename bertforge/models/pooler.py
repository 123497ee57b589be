"""BERT pooler: tanh(W h_[CLS] + b).

It lives with the encoder (not in `heads/`) because HF `BertModel` checkpoints carry it and
`pooler_output` is part of the encoder's output contract; NSP and classification heads read it.
"""

from __future__ import annotations

import torch
from torch import nn


class Pooler(nn.Module):
    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, H)
        return torch.tanh(self.dense(hidden[:, 0]))
