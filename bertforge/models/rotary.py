"""Rotary positions (RoFormer, Su et al. 2021; ModernBERT): each query and key is rotated by
an angle proportional to its position, so q_i . k_j depends on i - j alone.

Pairs of dimensions (d, d + D/2) turn by pos * theta^(-2d/D) (the "rotate half" layout of
GPT-NeoX and transformers, not the interleaved one of the paper). ModernBERT uses one theta for
full-attention layers and another for sliding-window layers, so the encoder keeps one table
per theta and each layer reads its own. The rotation runs in fp32 (as transformers does):
at 8k positions a bf16 angle would be off by whole radians.
"""

from __future__ import annotations

import torch
from torch import nn


class Rotary(nn.Module):
    """cos/sin of every (position, frequency) for one theta; the inverse frequencies are a
    non-persistent buffer (a function of the config, not a weight)."""

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        self.register_buffer("inv_freq", 1.0 / theta**exponents, persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T,) or (B, T) positions -> cos, sin of shape (..., T, D) in fp32."""
        angles = positions[..., None].float() * self.inv_freq  # (..., T, D / 2)
        angles = torch.cat((angles, angles), dim=-1)  # (..., T, D)
        return angles.cos(), angles.sin()


def rotate(
    x: torch.Tensor,  # (B, nh, T, D)
    cos: torch.Tensor,  # (T, D) or (B, T, D)
    sin: torch.Tensor,
) -> torch.Tensor:  # (B, nh, T, D), x's dtype
    if cos.dim() == 3:  # per-example positions: broadcast over the heads
        cos, sin = cos[:, None], sin[:, None]
    x32 = x.float()
    first, second = x32.chunk(2, dim=-1)
    turned = torch.cat((-second, first), dim=-1)  # x rotated by 90 degrees in each pair
    return (x32 * cos + turned * sin).to(x.dtype)
