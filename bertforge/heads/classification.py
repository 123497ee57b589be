"""Task heads: encoder output in, logits out (losses live in `bertforge.objectives`).

Their shapes differ by family (`families/spec.py` `Heads`): BERT classifies the pooler
output, RoBERTa and ELECTRA put a dense layer of their own on the first token, DistilBERT
one with a ReLU and no dropout before it.
"""

from __future__ import annotations

import torch
from torch import nn

from bertforge.activations import ACTIVATIONS
from bertforge.config import EncoderConfig
from bertforge.families.spec import Classifier
from bertforge.models.encoder import EncoderOutput
from bertforge.models.init import init_weights


class SequenceHead(nn.Module):
    """(B, T, H) states -> (B, C): one vector of logits per input, in a family's shape."""

    def __init__(
        self, shape: Classifier, config: EncoderConfig, out_features: int, dropout: float
    ) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.pooled = shape.pooled
        self.dropout_first = shape.dropout_first and not shape.pooled
        self.dense = None if shape.pooled else nn.Linear(hidden, hidden)
        self.act = ACTIVATIONS[shape.activation]
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, out_features)
        self.apply(lambda m: init_weights(m, config.initializer_range))

    def forward(self, encoded: EncoderOutput) -> torch.Tensor:  # (B, C)
        if self.dense is None:
            return self.out(self.dropout(encoded.pooler_output))
        x = encoded.last_hidden_state[:, 0]  # (B, H): the [CLS] / <s> token
        if self.dropout_first:
            x = self.dropout(x)
        return self.out(self.dropout(self.act(self.dense(x))))


class TokenHead(nn.Module):
    """(B, T, H) -> (B, T, C): dropout -> Linear on every token (NER, POS)."""

    def __init__(self, config: EncoderConfig, out_features: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(config.hidden_size, out_features)
        init_weights(self.out, config.initializer_range)

    def forward(self, encoded: EncoderOutput) -> torch.Tensor:  # (B, T, C)
        return self.out(self.dropout(encoded.last_hidden_state))


class SpanHead(nn.Module):
    """(B, T, H) -> start and end logits, each (B, T) (extractive QA); a dropout before the
    Linear only where the family has one (DistilBERT)."""

    def __init__(self, config: EncoderConfig, dropout: float | None) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout is not None else nn.Identity()
        self.out = nn.Linear(config.hidden_size, 2)
        init_weights(self.out, config.initializer_range)

    def forward(self, encoded: EncoderOutput) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.out(self.dropout(encoded.last_hidden_state)).unbind(dim=-1)
        return start, end
