"""Unpadded execution: run the position-wise work of the encoder on real tokens only.

A padded batch `(B, T)` with N real tokens spends `B * T / N` times the necessary FLOPs in
every projection, feed-forward and LayerNorm; with dynamic padding on short, uneven inputs
(SST-2 phrases, CoNLL sentences) that is 2-3x. `Packing` gathers the real rows into one
`(N, H)` stream and scatters them back. Attention is the only step that needs the sequence
layout, so it pads its fused QKV projection for SDPA and unpads the result (at T <= 512 the
copies cost far less than the GEMMs they save).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Packing:
    """Where the real tokens of a padded `(B, T)` batch sit in its flattened `(B * T)` rows."""

    indices: torch.Tensor  # (N,) int64, row-major positions of the real tokens
    batch: int
    length: int

    @classmethod
    def from_mask(cls, attention_mask: torch.Tensor) -> Packing:
        """`attention_mask`: (B, T), 1 for a token and 0 for padding."""
        batch, length = attention_mask.shape
        indices = attention_mask.reshape(-1).nonzero().squeeze(1)  # (N,)
        return cls(indices, batch, length)

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (N, ...)."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.indices)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (B, T, ...), zeros at the padding positions."""
        flat = x.new_zeros(self.batch * self.length, *x.shape[1:])
        return flat.index_copy(0, self.indices, x).view(self.batch, self.length, *x.shape[1:])
