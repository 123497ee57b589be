"""Multiple choice (SWAG, RACE): each (context, choice) pair is scored by pooler -> dropout ->
Linear(H, 1), and the scores of one question are its logits (HF `BertForMultipleChoice`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.heads.classifier import classifier_layers
from bertforge.interop.hf.pretrained import HFPretrained
from bertforge.interop.hf.task import TaskMeta
from bertforge.models.encoder import Encoder


def _flat(x: torch.Tensor | None) -> torch.Tensor | None:  # (B, C, T) -> (B * C, T)
    return None if x is None else x.reshape(-1, x.shape[-1])


class MultipleChoice(HFPretrained, nn.Module):
    """(B, C, T) tokens, C choices per example -> (B, C) logits."""

    hf_head = "multiple_choice"
    fresh_ok = ("encoder.pooler.", "classifier.")

    def __init__(self, config: EncoderConfig, *, classifier_dropout: float | None = None) -> None:
        super().__init__()
        self.config = config
        self.classifier_dropout = classifier_dropout
        self.encoder = Encoder(config, add_pooler=True)
        self.dropout, self.classifier = classifier_layers(config, 1, classifier_dropout)

    @classmethod
    def from_parts(
        cls,
        config: EncoderConfig,
        parts: set[str],
        task: TaskMeta,
        classifier_dropout: float | None = None,
    ) -> MultipleChoice:
        if classifier_dropout is None:
            classifier_dropout = task.classifier_dropout
        return cls(config, classifier_dropout=classifier_dropout)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, classifier_dropout: float | None = None
    ) -> MultipleChoice:
        """Encoder from any BERT checkpoint; the head when it is a multiple-choice one."""
        return super().from_pretrained(path, classifier_dropout=classifier_dropout)

    def task_meta(self) -> TaskMeta:
        return TaskMeta(classifier_dropout=self.classifier_dropout)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, C, T)
        attention_mask: torch.Tensor | None = None,  # (B, C, T)
        token_type_ids: torch.Tensor | None = None,  # (B, C, T)
    ) -> torch.Tensor:  # (B, C)
        B, C, _ = input_ids.shape
        out = self.encoder(_flat(input_ids), _flat(attention_mask), _flat(token_type_ids))
        scores = self.classifier(self.dropout(out.pooler_output))  # (B * C, 1)
        return scores.view(B, C)
