"""Input embeddings: token [+ segment] [+ absolute position], then LayerNorm and dropout
(positions that live in attention, relative or rotary, add nothing here)."""

from __future__ import annotations

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.models.dropout import Dropout


def offset_positions(input_ids: torch.Tensor, pad_id: int, offset: int) -> torch.Tensor:
    """(B, T) position ids counting real tokens from `offset`, padding at `offset - 1`.

    RoBERTa's rule (fairseq's `make_positions`): positions skip the padding id's row, and a
    pad token gets the padding row wherever it stands, so left padding moves no token.
    """
    real = input_ids.ne(pad_id).long()  # (B, T)
    return real.cumsum(dim=1) * real + (offset - 1)


class Embeddings(nn.Module):
    """Map ids to vectors of size `hidden_size`.

    With `embedding_size` set (ALBERT, ELECTRA) the sum lives in that space and a linear
    map lifts it to the hidden size after normalisation.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        dim = config.embedding_dim
        self.pad_id = config.pad_token_id
        self.offset = config.position_offset
        self.tokens = nn.Embedding(config.vocab_size, dim, padding_idx=config.pad_token_id)
        self.segments = (
            nn.Embedding(config.type_vocab_size, dim) if config.type_vocab_size > 0 else None
        )
        self.positions = (
            nn.Embedding(config.max_position_embeddings, dim)
            if config.position == "absolute"
            else None
        )
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps, bias=config.norm_bias)
        rate = config.embedding_dropout_prob
        self.dropout = Dropout(config.hidden_dropout_prob if rate is None else rate)
        self.project = (
            nn.Linear(dim, config.hidden_size) if config.embedding_size is not None else None
        )

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:  # (B, T) or (T,)
        """The positions used when the caller passes none."""
        if self.offset:
            return offset_positions(input_ids, self.pad_id, self.offset)
        return torch.arange(input_ids.shape[-1], device=input_ids.device)

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
                position_ids = self.position_ids(input_ids)
            x = x + self.positions(position_ids)
        x = self.dropout(self.norm(x))
        return self.project(x) if self.project is not None else x
