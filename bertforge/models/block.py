"""One post-LN transformer block, as in the original BERT."""

from __future__ import annotations

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.models.attention import SelfAttention
from bertforge.models.dropout import Dropout
from bertforge.models.ffn import FeedForward
from bertforge.models.unpad import Packing


class Block(nn.Module):
    """x -> LN(x + drop(attn(x))) -> LN(h + drop(ffn(h)))."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(config)
        self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, H), or (N, H) real tokens with `packing`
        mask: torch.Tensor | None = None,  # (B, 1, 1, T) bool
        return_probs: bool = False,
        packing: Packing | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Everything but attention is position-wise, so it runs on either layout.
        a, probs = self.attn(x, mask, return_probs, packing)
        h = self.attn_norm(x + self.dropout(a))
        return self.ffn_norm(h + self.dropout(self.ffn(h))), probs
