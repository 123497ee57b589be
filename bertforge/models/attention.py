"""Multi-head self-attention through `F.scaled_dot_product_attention`, or with relative
positions (`relative.py`) when the config asks for them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.models.relative import RelativePositions, relative_attention
from bertforge.models.unpad import Packing


class SelfAttention(nn.Module):
    """Bidirectional self-attention with one fused QKV projection (one GEMM instead of three)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob
        self.relative = (
            RelativePositions(config.max_relative_position, config.head_dim)
            if config.position == "relative"
            else None
        )

    def forward(
        self,
        x: torch.Tensor,  # (B, T, H), or (N, H) real tokens with `packing`
        mask: torch.Tensor | None = None,  # (B, 1, 1, T) bool, True = may attend
        return_probs: bool = False,
        packing: Packing | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        qkv = self.qkv(x)  # (B, T, 3H) or (N, 3H)
        if packing is not None:
            qkv = packing.pad(qkv)  # (B, T, 3H); the zero rows are masked out as keys
        B, T = qkv.shape[:2]
        H = self.num_heads * self.head_dim
        # (B, T, 3, nh, hd) -> 3 x (B, nh, T, hd)
        q, k, v = qkv.view(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        dropout_p = self.dropout_p if self.training else 0.0
        probs = None
        if self.relative is not None:
            y, probs = relative_attention(q, k, v, *self.relative(T), mask, dropout_p)
        elif return_probs:
            # SDPA never materialises the probabilities, so when they are asked for we do the
            # same computation by hand (slower; only used for inspection).
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, nh, T, T)
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            probs = scores.softmax(dim=-1)
            y = F.dropout(probs, dropout_p, self.training) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).reshape(B, T, H)  # (B, T, H)
        if packing is not None:
            y = packing.unpad(y)  # (N, H)
        return self.out(y), probs if return_probs else None
