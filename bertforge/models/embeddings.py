"""Input embeddings: token + segment + absolute position, then LayerNorm and dropout."""

from __future__ import annotations

import torch
from torch import nn

from bertforge.config import EncoderConfig


class Embeddings(nn.Module):
    """Map ids to vectors of size `hidden_size`.

    With `embedding_size < hidden_size` (ALBERT factorization) the sum lives in the small
    space and a linear map lifts it to the hidden size after normalisation.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        dim = config.embedding_dim
        self.tokens = nn.Embedding(config.vocab_size, dim, padding_idx=config.pad_token_id)
        self.segments = (
            nn.Embedding(config.type_vocab_size, dim) if config.type_vocab_size > 0 else None
        )
        self.positions = (
            nn.Embedding(config.max_position_embeddings, dim)
            if config.position == "absolute"
            else None
        )
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.project = nn.Linear(dim, config.hidden_size) if dim != config.hidden_size else None

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
        position_ids: torch.Tensor | None = None,  # (B, T) or (T,)
    ) -> torch.Tensor:  # (B, T, H)
        x = self.tokens(input_ids)  # (B, T, E)
        if self.segments is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.segments(token_type_ids)
        if self.positions is not None:
            if position_ids is None:
                position_ids = torch.arange(input_ids.shape[-1], device=input_ids.device)
            x = x + self.positions(position_ids)
        x = self.dropout(self.norm(x))
        return self.project(x) if self.project is not None else x
