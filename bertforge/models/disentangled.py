"""Disentangled attention (DeBERTa, He et al. 2021): content and relative position are two
vectors, and a score adds content-to-content, content-to-position and position-to-content:

    A_ij = (q_i . k_j  +  q_i . Kr[d(i, j)]  +  k_j . Qr[d(i, j)]) / sqrt(head_dim * 3)

with d(i, j) the distance i - j in log buckets (exact up to half the buckets, then log-spaced
out to max_relative_position) shifted into [0, 2 * span). Kr and Qr are the shared distance
embeddings (one table for the encoder, optionally LayerNorm'd) through the layer's key and
query projections (`share_att_key`, DeBERTa-v3) or projections of their own. As in
`relative.py`, the queries and keys meet the (2 span, d) table once, (T, 2 span) scores, and
a gather spreads them over (i, j): nothing of size (T, T, d) is built.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.models.dropout import dropout


def log_buckets(distance: torch.Tensor, buckets: int, max_position: int) -> torch.Tensor:
    """DeBERTa's bucketing of signed distances (exactly as transformers computes it, in fp32):
    |d| < buckets / 2 unchanged, beyond log-spaced so that max_position lands on the last."""
    sign = torch.sign(distance)
    mid = buckets // 2
    near = (distance < mid) & (distance > -mid)
    magnitude = torch.where(near, torch.tensor(mid - 1).type_as(distance), distance.abs())
    ratio = torch.log(torch.tensor((max_position - 1) / mid))
    far = torch.ceil(torch.log(magnitude / mid) / ratio * (mid - 1)) + mid
    return torch.where(magnitude <= mid, distance.type_as(far), far * sign).long()


class DistanceEmbeddings(nn.Module):
    """The encoder's one table of distance embeddings (2 span, H), shared by every layer, and
    the (T, T) index of each query-key pair into it."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.buckets = config.position_buckets
        self.max_position = config.max_relative_position
        self.span = self.buckets or self.max_position
        self.embeddings = nn.Embedding(2 * self.span, config.hidden_size)
        self.norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            if config.relative_norm
            else None
        )

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """((R, H) embeddings, (T, T) int64 index into them) for a length-T input: only the
        R <= 2 span rows this length reaches (255 of 512 at T = 128 for DeBERTa-v3), since the
        table meets every query and key of every layer."""
        weight = self.embeddings.weight
        pos = torch.arange(length, device=weight.device)
        distance = pos[:, None] - pos[None, :]  # (T, T): i - j
        if self.buckets:
            distance = log_buckets(distance, self.buckets, self.max_position)
        index = (distance + self.span).clamp(0, 2 * self.span - 1)
        low, high = int(index.min()), int(index.max())
        table = weight[low : high + 1]  # the norm is per row: cutting first changes nothing
        if self.norm is not None:
            table = self.norm(table)
        return table, index - low


class PositionProjections(nn.Module):
    """A layer's own projections of the distance embeddings (when keys are not shared)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.key = nn.Linear(h, h) if "c2p" in config.pos_att_type else None
        self.query = nn.Linear(h, h) if "p2c" in config.pos_att_type else None


def disentangled_attention(
    q: torch.Tensor,  # (B, nh, T, d)
    k: torch.Tensor,  # (B, nh, T, d)
    v: torch.Tensor,  # (B, nh, T, d)
    pos_key: torch.Tensor | None,  # (nh, R, d): Kr, for content-to-position
    pos_query: torch.Tensor | None,  # (nh, R, d): Qr, for position-to-content
    index: torch.Tensor,  # (T, T) int64 into the R rows
    mask: torch.Tensor | None,  # (B, 1, 1 or T, T) bool, True = may attend
    dropout_p: float,
) -> tuple[torch.Tensor, torch.Tensor]:  # (B, nh, T, d), probabilities (B, nh, T, T)
    B, nh, T, d = q.shape
    terms = 1 + (pos_key is not None) + (pos_query is not None)
    spread = index.expand(B, nh, T, T)
    scores = q @ k.transpose(-2, -1)  # (B, nh, T, T)
    if pos_key is not None:  # q_i . Kr[d(i, j)]
        scores = scores + (q @ pos_key.transpose(-2, -1)).gather(-1, spread)
    if pos_query is not None:  # k_j . Qr[d(i, j)]: gathered by key row, then transposed
        by_key = (k @ pos_query.transpose(-2, -1)).gather(-1, spread.transpose(-2, -1))
        scores = scores + by_key.transpose(-2, -1)
    scores = scores / math.sqrt(d * terms)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = scores.softmax(dim=-1)
    return dropout(probs, dropout_p).to(v.dtype) @ v, probs
