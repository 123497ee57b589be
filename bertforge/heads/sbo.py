"""Span boundary head (SpanBERT, Joshi et al., 2020): predicts each token of a masked span from
the two tokens around the span and its position inside it, never from its own hidden state."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.errors import ConfigError
from bertforge.models.init import init_weights


class SBOHead(nn.Module):
    """(x_{s-1}, x_{e+1}, p_{i-s+1}) -> (M, V): a two-layer GELU + LayerNorm MLP over the
    concatenated boundary states and relative position, then a decoder tied to the token
    embeddings (as `MLMHead`)."""

    def __init__(self, config: EncoderConfig, max_span: int) -> None:
        super().__init__()
        if max_span < 1:
            raise ConfigError(f"span boundary head: max_span {max_span}; use max_span >= 1")
        hidden, eps = config.hidden_size, config.layer_norm_eps
        self.max_span = max_span
        self.positions = nn.Embedding(max_span, hidden)  # p_1 .. p_max_span
        self.dense1 = nn.Linear(3 * hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        # The tied decoder lives in the embedding space (E), so with factorized embeddings
        # (ALBERT, ELECTRA) the second layer maps H -> E; for BERT E == H.
        self.dense2 = nn.Linear(hidden, config.embedding_dim)
        self.norm2 = nn.LayerNorm(config.embedding_dim, eps=eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.apply(lambda m: init_weights(m, config.initializer_range))

    def forward(
        self,
        hidden: torch.Tensor,  # (B, T, H): encoder output
        left: torch.Tensor,  # (M,) int: position s - 1 of each target's left boundary
        right: torch.Tensor,  # (M,) int: position e + 1 of its right boundary
        offset: torch.Tensor,  # (M,) int: i - s, the target's 0-based place in its span
        rows: torch.Tensor,  # (M,) int: the batch row of each target
        decoder_weight: torch.Tensor,  # (V, E): the token embedding matrix (weight tying)
    ) -> torch.Tensor:  # (M, V)
        # Spans are max_span words, but a word may be several tokens: offsets past the table
        # share its last row rather than index out of it.
        where = self.positions(offset.clamp(max=self.max_span - 1))  # (M, H)
        x = torch.cat([hidden[rows, left], hidden[rows, right], where], dim=-1)  # (M, 3H)
        x = self.norm1(F.gelu(self.dense1(x)))  # (M, H)
        x = self.norm2(F.gelu(self.dense2(x)))  # (M, E)
        return F.linear(x, decoder_weight, self.bias)
