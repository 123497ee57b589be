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
        """(T,) or (B, T) positions -> cos and signed sin, each (..., T, D) in fp32: the
        sin's first half negated, so that a rotation is x * cos + swap_halves(x) * sin."""
        angles = positions[..., None].float() * self.inv_freq  # (..., T, D / 2)
        sin = angles.sin()
        return torch.cat((angles, angles), dim=-1).cos(), torch.cat((-sin, sin), dim=-1)


def rotate(
    x: torch.Tensor,  # (..., B, nh, T, D): queries and keys may come stacked
    cos: torch.Tensor,  # (T, D) or (B, T, D)
    sin: torch.Tensor,  # signed, as `Rotary` makes it
) -> torch.Tensor:  # x's shape and dtype
    if cos.dim() == 3:  # per-example positions: broadcast over the heads
        cos, sin = cos[:, None], sin[:, None]
    x32 = x.float()
    # (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin): the halves swapped meet the signed sin.
    return torch.addcmul(x32 * cos, x32.roll(x.shape[-1] // 2, dims=-1), sin).to(x.dtype)
