"""Masked-language-model head: a transform, then a decoder tied to the token embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertforge.activations import ACTIVATIONS
from bertforge.config import EncoderConfig


class MLMHead(nn.Module):
    """(M, H) -> (M, V). Feed it only the masked positions: the vocab projection is the most
    expensive matmul in pretraining, and 85% of its rows would be thrown away."""

    def __init__(self, config: EncoderConfig, activation: str | None = None) -> None:
        super().__init__()
        # With factorized embeddings the decoder lives in the embedding space (E), so the
        # transform maps H -> E; for BERT E == H.
        self.transform = nn.Linear(config.hidden_size, config.embedding_dim, bias=config.head_bias)
        # BERT uses hidden_act; RoBERTa's and ELECTRA's generator heads a fixed GELU;
        # ModernBERT's config names its own (classifier_activation).
        self.act = ACTIVATIONS[config.head_activation or activation or config.hidden_act]
        self.norm = nn.LayerNorm(
            config.embedding_dim, eps=config.layer_norm_eps, bias=config.norm_bias
        )
        self.bias = nn.Parameter(torch.zeros(config.vocab_size)) if config.decoder_bias else None

    def forward(
        self,
        hidden: torch.Tensor,  # (..., H)
        decoder_weight: torch.Tensor,  # (V, E): the token embedding matrix (weight tying)
    ) -> torch.Tensor:  # (..., V)
        return F.linear(self.norm(self.act(self.transform(hidden))), decoder_weight, self.bias)
