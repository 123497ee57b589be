"""Multi-head self-attention through `F.scaled_dot_product_attention`, or by hand when the
probabilities are asked for or dropped out on CPU, or with relative positions (`relative.py`)
when the config asks for them, or through the flex / varlen kernels (`kernels.py`) when the
encoder's backend is one of those. Rotary positions (`rotary.py`) turn the queries and keys first;
the layer's mask (`masks.py`) says which keys each query sees (padding, a sliding window).

Why by hand for CPU dropout: SDPA's CPU kernels do not support dropout, so it falls back to
its math path, which draws one random number per probability (`bernoulli_`). The same math
with the cheap masks of `dropout.py` takes half the time (BERT-base, 32 x 128, bf16: 43 ms
against 100 ms per layer, forward and backward).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.flex_attention import BlockMask

from bertforge.config import EncoderConfig
from bertforge.models.disentangled import PositionProjections, disentangled_attention
from bertforge.models.dropout import dropout
from bertforge.models.kernels import VarlenSequences, flex, refuse_dropout, varlen
from bertforge.models.masks import AttentionInputs, WindowBlocks
from bertforge.models.relative import RelativePositions, relative_attention
from bertforge.models.rotary import rotate


def softmax_attention(
    q: torch.Tensor,  # (B, nh, T, d)
    k: torch.Tensor,  # (B, nh, T, d)
    v: torch.Tensor,  # (B, nh, T, d)
    mask: torch.Tensor | None,  # (B, 1, 1 or T, T) bool, True = may attend
    dropout_p: float,
) -> tuple[torch.Tensor, torch.Tensor]:  # (B, nh, T, d), probabilities (B, nh, T, T)
    """What SDPA computes, with the probabilities (before dropout) kept."""
    scores = q @ k.transpose(-2, -1)  # (B, nh, T, T)
    scale = 1 / math.sqrt(q.shape[-1])
    if mask is None:
        scores = scores * scale
    else:
        # An additive bias of the mask's shape: one fused pass with the scaling.
        bias = torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device)
        bias.masked_fill_(~mask, torch.finfo(scores.dtype).min)
        scores = torch.add(bias, scores, alpha=scale)
    probs = scores.softmax(dim=-1)
    return dropout(probs, dropout_p).to(v.dtype) @ v, probs


def blocked_attention(
    q: torch.Tensor,  # (B, nh, T, d)
    k: torch.Tensor,  # (B, nh, T, d)
    v: torch.Tensor,  # (B, nh, T, d)
    blocks: WindowBlocks,
    dropout_p: float,
) -> torch.Tensor:  # (B, nh, T, d)
    """Sliding-window attention block by block (`masks.WindowBlocks`): each block of w queries
    meets the 3w keys around it, so memory and work grow with T, not T^2."""
    B, nh, T, d = q.shape
    w = blocks.window
    nb = -(-T // w)

    def keys(x: torch.Tensor) -> torch.Tensor:  # (B, nh, T, d) -> (B * nb, nh, 3w, d)
        padded = F.pad(x, (0, 0, w, nb * w - T + w))  # (B, nh, (nb + 2) w, d)
        windows = padded.unfold(2, 3 * w, w).transpose(-1, -2)  # (B, nh, nb, 3w, d)
        return windows.transpose(1, 2).reshape(B * nb, nh, 3 * w, d)

    queries = F.pad(q, (0, 0, 0, nb * w - T)).view(B, nh, nb, w, d)
    queries = queries.transpose(1, 2).reshape(B * nb, nh, w, d)
    mask = blocks.mask.expand(B, -1, -1, -1).reshape(B * nb, 1, w, 3 * w)
    if dropout_p > 0 and q.device.type == "cpu":
        y, _ = softmax_attention(queries, keys(k), keys(v), mask, dropout_p)
    else:
        y = F.scaled_dot_product_attention(
            queries, keys(k), keys(v), attn_mask=mask, dropout_p=dropout_p
        )
    return y.view(B, nb, nh, w, d).transpose(1, 2).reshape(B, nh, nb * w, d)[:, :, :T]


class SelfAttention(nn.Module):
    """Bidirectional self-attention with one fused QKV projection (one GEMM instead of three)."""

    def __init__(self, config: EncoderConfig, layer_type: str = "full_attention") -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.layer_type = layer_type
        bias = config.attention_bias
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=bias)
        self.out = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.dropout_p = config.attention_probs_dropout_prob
        self.relative = (
            RelativePositions(config.max_relative_position, config.head_dim)
            if config.position == "relative"
            else None
        )
        # DeBERTa: which distance terms, and the projections of its own when not shared.
        self.disentangled = config.position == "disentangled"
        self.terms = tuple(config.pos_att_type) if self.disentangled else ()
        self.distance_dropout = config.hidden_dropout_prob
        self.positions = (
            PositionProjections(config) if self.disentangled and not config.share_att_key else None
        )

    def forward(
        self,
        x: torch.Tensor,  # (B, T, H), or (N, H) real tokens with `inputs.packing`
        inputs: AttentionInputs,
        return_probs: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        packing = inputs.packing
        mask = inputs.masks[self.layer_type]  # (B, 1, 1 or T, T) bool, True = may attend
        qkv = self.qkv(x)  # (B, T, 3H) or (N, 3H)
        if packing is not None:
            # (B, T, 3H), or (D, L, 3H) by document; the zero rows are masked out as keys
            qkv = packing.to_attention(qkv)
        B, T = qkv.shape[:2]
        H = self.num_heads * self.head_dim
        # (B, T, 3, nh, hd) -> 3 x (B, nh, T, hd)
        qkv = qkv.view(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv
        if inputs.rotary is not None:  # queries and keys turned together: one pass
            q, k = rotate(qkv[:2], *inputs.rotary[self.layer_type])  # (T, hd) or (B, T, hd)
        dropout_p = self.dropout_p if self.training else 0.0
        probs = None
        if isinstance(mask, BlockMask):
            refuse_dropout("flex", dropout_p)
            y = flex(q, k, v, mask)
        elif isinstance(mask, VarlenSequences):
            refuse_dropout("varlen", dropout_p)
            y = varlen(q, k, v, mask)
        elif self.disentangled:
            y, probs = disentangled_attention(
                q, k, v, *self._distance_terms(inputs), mask, dropout_p
            )
        elif isinstance(mask, WindowBlocks):
            y = blocked_attention(q, k, v, mask, dropout_p)
        elif self.relative is not None:
            y, probs = relative_attention(q, k, v, *self.relative(T), mask, dropout_p)
        elif return_probs or (dropout_p > 0 and q.device.type == "cpu"):
            y, probs = softmax_attention(q, k, v, mask, dropout_p)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).reshape(B, T, H)  # (B, T, H)
        if packing is not None:
            y = packing.from_attention(y)  # (N, H)
        return self.out(y), probs if return_probs else None

    def _distance_terms(
        self, inputs: AttentionInputs
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """(Kr, Qr, index): the distance table through this layer's key and query
        projections (the shared ones, or its own), each (nh, R, d), for the terms it uses."""
        assert inputs.distances is not None
        table, index = inputs.distances
        if self.training:
            table = dropout(table, self.distance_dropout)
        R = table.shape[0]

        def heads(rows: torch.Tensor) -> torch.Tensor:  # (R, H) -> (nh, R, d)
            return rows.reshape(R, self.num_heads, self.head_dim).transpose(0, 1)

        found: dict[str, torch.Tensor | None] = {"key": None, "query": None}
        if self.positions is None:  # shared: through the qkv module itself (LoRA included)
            q_rows, k_rows, _ = self.qkv(table).chunk(3, dim=-1)  # 3 x (R, H)
            shared = {"key": k_rows, "query": q_rows}
        for term, role in (("c2p", "key"), ("p2c", "query")):
            if term in self.terms:
                own = getattr(self.positions, role) if self.positions is not None else None
                found[role] = heads(own(table) if own is not None else shared[role])
        return found["key"], found["query"], index
