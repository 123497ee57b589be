"""Sequence classification / regression: pooler -> dropout -> Linear(H, C) (HF
`BertForSequenceClassification`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.heads.classifier import classifier_layers
from bertforge.heads.labels import check_labels, check_problem, resolve_labels
from bertforge.interop.hf.pretrained import HFPretrained
from bertforge.interop.hf.task import TaskMeta
from bertforge.models.encoder import Encoder


class SequenceClassifier(HFPretrained, nn.Module):
    """(B, T) tokens -> (B, C) logits (C = 1 for regression)."""

    hf_head = "sequence_classification"
    # A bare MLM checkpoint has no pooler; the head reads it, so it may start fresh too.
    fresh_ok = ("encoder.pooler.", "classifier.")

    def __init__(
        self,
        config: EncoderConfig,
        num_labels: int,
        *,
        labels: list[str] | None = None,
        problem: str = "single_label",
        classifier_dropout: float | None = None,
    ) -> None:
        super().__init__()
        check_labels(num_labels, labels)
        check_problem(problem, num_labels)
        self.config = config
        self.num_labels = num_labels
        self.labels = list(labels) if labels is not None else None
        self.problem = problem
        self.classifier_dropout = classifier_dropout
        self.encoder = Encoder(config, add_pooler=True)
        self.dropout, self.classifier = classifier_layers(config, num_labels, classifier_dropout)

    @classmethod
    def from_parts(
        cls,
        config: EncoderConfig,
        parts: set[str],
        task: TaskMeta,
        num_labels: int | None = None,
        labels: list[str] | None = None,
        problem: str | None = None,
        classifier_dropout: float | None = None,
    ) -> SequenceClassifier:
        has_head = "classifier" in parts
        num_labels, labels = resolve_labels(num_labels, labels, task, has_head)
        if problem is None:
            problem = task.problem if has_head and task.problem else None
        if problem is None:
            # transformers infers the same from the label count when problem_type is unset.
            problem = "regression" if num_labels == 1 else "single_label"
        if classifier_dropout is None:
            classifier_dropout = task.classifier_dropout
        return cls(
            config,
            num_labels,
            labels=labels,
            problem=problem,
            classifier_dropout=classifier_dropout,
        )

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        num_labels: int | None = None,
        labels: list[str] | None = None,
        problem: str | None = None,
        classifier_dropout: float | None = None,
    ) -> SequenceClassifier:
        """Encoder from any BERT checkpoint; the head too when the checkpoint has this kind
        (else a fresh head, logged). `num_labels`/`labels` default to the checkpoint's head."""
        return super().from_pretrained(
            path,
            num_labels=num_labels,
            labels=labels,
            problem=problem,
            classifier_dropout=classifier_dropout,
        )

    def task_meta(self) -> TaskMeta:
        return TaskMeta(self.num_labels, self.labels, self.problem, self.classifier_dropout)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
    ) -> torch.Tensor:  # (B, C)
        pooled = self.encoder(input_ids, attention_mask, token_type_ids).pooler_output
        return self.classifier(self.dropout(pooled))
