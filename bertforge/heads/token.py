"""Token classification (NER, POS): dropout -> Linear(H, C) on every token (HF
`BertForTokenClassification`, which has no pooler)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.heads.classifier import classifier_layers
from bertforge.heads.labels import check_labels, resolve_labels
from bertforge.interop.hf.pretrained import HFPretrained
from bertforge.interop.hf.task import TaskMeta
from bertforge.models.encoder import Encoder


class TokenClassifier(HFPretrained, nn.Module):
    """(B, T) tokens -> (B, T, C) logits."""

    hf_head = "token_classification"
    fresh_ok = ("classifier.",)

    def __init__(
        self,
        config: EncoderConfig,
        num_labels: int,
        *,
        labels: list[str] | None = None,
        classifier_dropout: float | None = None,
    ) -> None:
        super().__init__()
        check_labels(num_labels, labels)
        self.config = config
        self.num_labels = num_labels
        self.labels = list(labels) if labels is not None else None
        self.classifier_dropout = classifier_dropout
        self.encoder = Encoder(config, add_pooler=False)
        self.dropout, self.classifier = classifier_layers(config, num_labels, classifier_dropout)

    @classmethod
    def from_parts(
        cls,
        config: EncoderConfig,
        parts: set[str],
        task: TaskMeta,
        num_labels: int | None = None,
        labels: list[str] | None = None,
        classifier_dropout: float | None = None,
    ) -> TokenClassifier:
        num_labels, labels = resolve_labels(num_labels, labels, task, "classifier" in parts)
        if classifier_dropout is None:
            classifier_dropout = task.classifier_dropout
        return cls(config, num_labels, labels=labels, classifier_dropout=classifier_dropout)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        num_labels: int | None = None,
        labels: list[str] | None = None,
        classifier_dropout: float | None = None,
    ) -> TokenClassifier:
        """Encoder from any BERT checkpoint; the head when it is a token classifier."""
        return super().from_pretrained(
            path, num_labels=num_labels, labels=labels, classifier_dropout=classifier_dropout
        )

    def task_meta(self) -> TaskMeta:
        return TaskMeta(self.num_labels, self.labels, None, self.classifier_dropout)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
    ) -> torch.Tensor:  # (B, T, C)
        hidden = self.encoder(input_ids, attention_mask, token_type_ids).last_hidden_state
        return self.classifier(self.dropout(hidden))
