"""Functional relative positions (NEZHA, Wei et al. 2019): attention sees the clipped distance
j - i between query i and key j as a fixed sinusoid added to the keys and to the values.

    score_ij = q_i . (k_j + r_ij) / sqrt(d)        out_i = sum_j p_ij (v_j + r_ij)

with r_ij = table[clip(j - i, -K, K) + K], a (2K + 1, d) table of sinusoids over the row
index 0..2K (as NEZHA builds it). HF's NEZHA materialises r as (T, T, d) and runs T batched
matmuls against it. Only 2K + 1 (or, for short inputs, 2T - 1) of those rows differ, so here
the queries meet the table once, q @ table^T, and a gather spreads the scores over (i, j);
for the values the probabilities are summed per distance (scatter-add) and meet the table
once more. Both extra matmuls are (B nh T, d) x (d, R), no larger than Q K^T.

SDPA cannot add the value term (it never exposes the probabilities), so this path computes
attention by hand, as `attention.py` does for absolute positions when SDPA is not the fast way.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bertforge.models.dropout import dropout


def sinusoid_table(max_relative_position: int, depth: int) -> torch.Tensor:  # (2K + 1, d)
    """NEZHA's table: row k holds sin/cos of k * 10000^(-2i/d) in its even/odd columns."""
    rows = torch.arange(2 * max_relative_position + 1, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, depth, 2, dtype=torch.float32) * (-math.log(1e4) / depth))
    table = torch.zeros(rows.shape[0], depth)
    table[:, 0::2] = torch.sin(rows * freq)
    table[:, 1::2] = torch.cos(rows * freq)
    return table


class RelativePositions(nn.Module):
    """The table (a non-persistent buffer: it is a function of the config, not a weight) and
    the (T, T) distance index into the rows a length-T input uses."""

    def __init__(self, max_relative_position: int, head_dim: int) -> None:
        super().__init__()
        self.max_distance = max_relative_position
        table = sinusoid_table(max_relative_position, head_dim)
        self.register_buffer("table", table, persistent=False)

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """((R, d) table rows, (T, T) int64 index into them) for a length-T input."""
        k = self.max_distance
        pos = torch.arange(length, device=self.table.device)
        distance = (pos[None, :] - pos[:, None]).clamp(-k, k) + k  # (T, T): j - i
        # Distances beyond +-(T - 1) never occur: keep only the rows this length can reach.
        low = max(0, k - (length - 1))
        return self.table[low : k + length], distance - low


def relative_attention(
    q: torch.Tensor,  # (B, nh, T, d)
    k: torch.Tensor,  # (B, nh, T, d)
    v: torch.Tensor,  # (B, nh, T, d)
    table: torch.Tensor,  # (R, d)
    index: torch.Tensor,  # (T, T) int64 into the table's rows
    mask: torch.Tensor | None,  # (B, 1, 1, T) bool, True = may attend
    dropout_p: float,
) -> tuple[torch.Tensor, torch.Tensor]:  # (B, nh, T, d), probabilities (B, nh, T, T)
    B, nh, T, _ = q.shape
    table = table.to(q.dtype)
    spread = index.expand(B, nh, T, T)
    scores = q @ k.transpose(-2, -1)  # (B, nh, T, T)
    scores = scores + (q @ table.T).gather(-1, spread)  # + q_i . r_ij
    scores = scores / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = scores.softmax(dim=-1)
    dropped = dropout(probs, dropout_p)
    per_distance = dropped.new_zeros(B, nh, T, table.shape[0]).scatter_add_(-1, spread, dropped)
    return dropped @ v + per_distance @ table, probs  # + sum_j p_ij r_ij
