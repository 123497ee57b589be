"""Task heads: encoder output in, logits out (losses live in `bertforge.objectives`).

Their shapes differ by family (`families/spec.py` `Heads`): BERT classifies the pooler
output, RoBERTa and ELECTRA put a dense layer of their own on the first token, DistilBERT
one with a ReLU and no dropout before it, ModernBERT a dense -> act -> LayerNorm on the first
token or the mean of the tokens (and on every token for tagging and QA).
"""

from __future__ import annotations

import torch
from torch import nn

from bertforge.activations import ACTIVATIONS
from bertforge.config import EncoderConfig
from bertforge.families.spec import Classifier
from bertforge.models.encoder import EncoderOutput
from bertforge.models.init import init_weights


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, H), (B, T) 1/0 -> (B, H): the mean over the real tokens."""
    if mask is None:
        return hidden.mean(dim=1)
    weights = mask.to(hidden.dtype)[..., None]  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1)


class Transformed(nn.Module):
    """A head with an optional transform of its own, (..., H) -> (..., H): dense ->
    activation [-> LayerNorm] (`dense`, `act`, `norm`: the names its checkpoints use)."""

    def add_transform(self, shape: Classifier | None, config: EncoderConfig) -> None:
        hidden = config.hidden_size
        self.dense = nn.Linear(hidden, hidden, bias=config.head_bias) if shape else None
        self.act = ACTIVATIONS[config.head_activation or shape.activation] if shape else None
        self.norm = (
            nn.LayerNorm(hidden, eps=config.layer_norm_eps, bias=config.norm_bias)
            if shape is not None and shape.norm
            else None
        )

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense is None:
            return x
        x = self.act(self.dense(x))
        return self.norm(x) if self.norm is not None else x


class SequenceHead(Transformed):
    """(B, T, H) states -> (B, C): one vector of logits per input, in a family's shape."""

    def __init__(
        self, shape: Classifier, config: EncoderConfig, out_features: int, dropout: float
    ) -> None:
        super().__init__()
        self.pooled = shape.pooled
        self.mean = config.classifier_pooling == "mean"
        self.dropout_first = shape.dropout_first and not shape.pooled
        self.add_transform(None if shape.pooled else shape, config)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(config.hidden_size, out_features)
        self.apply(lambda m: init_weights(m, config.initializer_range))

    def forward(self, encoded: EncoderOutput) -> torch.Tensor:  # (B, C)
        if self.pooled:
            return self.out(self.dropout(encoded.pooler_output))
        hidden = encoded.last_hidden_state
        # (B, H): the mean of the real tokens, or the first ([CLS] / <s>) token
        x = mean_pool(hidden, encoded.attention_mask) if self.mean else hidden[:, 0]
        if self.dropout_first:
            x = self.dropout(x)
        return self.out(self.dropout(self.transform(x)))


class TokenHead(Transformed):
    """(B, T, H) -> (B, T, C): [transform ->] dropout -> Linear on every token (NER, POS)."""

    def __init__(
        self,
        config: EncoderConfig,
        out_features: int,
        dropout: float,
        transform: Classifier | None = None,
    ) -> None:
        super().__init__()
        self.add_transform(transform, config)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(config.hidden_size, out_features)
        self.apply(lambda m: init_weights(m, config.initializer_range))

    def forward(self, encoded: EncoderOutput) -> torch.Tensor:  # (B, T, C)
        return self.out(self.dropout(self.transform(encoded.last_hidden_state)))


class SpanHead(TokenHead):
    """(B, T, H) -> start and end logits, each (B, T) (extractive QA); a dropout before the
    Linear only where the family has one (DistilBERT, ModernBERT)."""

    def __init__(
        self, config: EncoderConfig, dropout: float | None, transform: Classifier | None = None
    ) -> None:
        super().__init__(config, 2, dropout or 0.0, transform)

    def forward(self, encoded: EncoderOutput) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = super().forward(encoded).unbind(dim=-1)
        return start, end
