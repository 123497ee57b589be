"""Task models: an encoder plus a small head, whose shape the encoder's family decides.

    SequenceClassifier   (B, T) -> (B, C)          classification, regression (C = 1)
    TokenClassifier      (B, T) -> (B, T, C)       NER, POS
    QuestionAnswering    (B, T) -> 2 x (B, T)      extractive QA span logits
    MultipleChoice       (B, C, T) -> (B, C)       SWAG, RACE

Each loads any checkpoint of its family (the head too when the checkpoint has this kind of
head, else a fresh one) and saves as the family's HF `...For<Task>` class.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from bertforge.architectures.labels import check_labels, check_problem, resolve_labels
from bertforge.config import EncoderConfig
from bertforge.families import Classifier, family
from bertforge.heads.classification import SequenceHead, SpanHead, TokenHead
from bertforge.models.encoder import Encoder
from bertforge.pretrained import Pretrained, TaskMeta


def head_dropout(config: EncoderConfig, kind: str, given: float | None) -> float:
    """The dropout before a task head's logits: the caller's, else the family's default for
    this head, else the encoder's hidden dropout (as transformers resolves it)."""
    if given is not None:
        return given
    default = family(config.model_type).heads.dropout.get(kind)
    return config.hidden_dropout_prob if default is None else default


def token_transform(config: EncoderConfig) -> Classifier | None:
    """The transform a family's token and span heads run first (ModernBERT's), if any."""
    shapes = family(config.model_type).heads
    return shapes.sequence if shapes.token_transform else None


class TaskModel(Pretrained, nn.Module):
    """`encoder` -> `head`. Subclasses choose the head; the forward is shared."""

    kind: ClassVar[str]

    def __init__(self, config: EncoderConfig, head: nn.Module, *, pooler: bool) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, add_pooler=pooler)
        self.head = head
        self.classifier_dropout: float | None = None

    @classmethod
    def from_checkpoint(
        cls,
        config: EncoderConfig,
        parts: set[str],
        meta: TaskMeta,
        classifier_dropout: float | None = None,
    ) -> Any:
        """Heads without labels (QA, multiple choice) take only the checkpoint's dropout."""
        if classifier_dropout is None:
            classifier_dropout = meta.classifier_dropout
        return cls(config, classifier_dropout=classifier_dropout)

    def task_meta(self) -> TaskMeta:
        return TaskMeta(classifier_dropout=self.classifier_dropout)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
    ) -> Any:
        return self.head(self.encoder(input_ids, attention_mask, token_type_ids))


class SequenceClassifier(TaskModel):
    """(B, T) tokens -> (B, C) logits (C = 1 for regression)."""

    kind = "sequence_classification"
    # A bare MLM checkpoint has no pooler; a pooled head reads it, so it may start fresh too.
    fresh_ok = ("encoder.pooler.", "head.")

    def __init__(
        self,
        config: EncoderConfig,
        num_labels: int,
        *,
        labels: list[str] | None = None,
        problem: str = "single_label",
        classifier_dropout: float | None = None,
    ) -> None:
        check_labels(num_labels, labels)
        check_problem(problem, num_labels)
        shape = family(config.model_type).heads.sequence
        dropout = head_dropout(config, self.kind, classifier_dropout)
        super().__init__(
            config, SequenceHead(shape, config, num_labels, dropout), pooler=shape.pooled
        )
        self.num_labels = num_labels
        self.labels = list(labels) if labels is not None else None
        self.problem = problem
        self.classifier_dropout = classifier_dropout

    @classmethod
    def from_checkpoint(
        cls,
        config: EncoderConfig,
        parts: set[str],
        meta: TaskMeta,
        num_labels: int | None = None,
        labels: list[str] | None = None,
        problem: str | None = None,
        classifier_dropout: float | None = None,
    ) -> SequenceClassifier:
        has_head = "head" in parts
        num_labels, labels = resolve_labels(num_labels, labels, meta, has_head)
        if problem is None:
            problem = meta.problem if has_head and meta.problem else None
        if problem is None:
            # transformers infers the same from the label count when problem_type is unset.
            problem = "regression" if num_labels == 1 else "single_label"
        if classifier_dropout is None:
            classifier_dropout = meta.classifier_dropout
        return cls(
            config,
            num_labels,
            labels=labels,
            problem=problem,
            classifier_dropout=classifier_dropout,
        )

    def task_meta(self) -> TaskMeta:
        return TaskMeta(self.num_labels, self.labels, self.problem, self.classifier_dropout)


class TokenClassifier(TaskModel):
    """(B, T) tokens -> (B, T, C) logits."""

    kind = "token_classification"
    fresh_ok = ("head.",)

    def __init__(
        self,
        config: EncoderConfig,
        num_labels: int,
        *,
        labels: list[str] | None = None,
        classifier_dropout: float | None = None,
    ) -> None:
        check_labels(num_labels, labels)
        dropout = head_dropout(config, self.kind, classifier_dropout)
        head = TokenHead(config, num_labels, dropout, token_transform(config))
        super().__init__(config, head, pooler=False)
        self.num_labels = num_labels
        self.labels = list(labels) if labels is not None else None
        self.classifier_dropout = classifier_dropout

    @classmethod
    def from_checkpoint(
        cls,
        config: EncoderConfig,
        parts: set[str],
        meta: TaskMeta,
        num_labels: int | None = None,
        labels: list[str] | None = None,
        classifier_dropout: float | None = None,
    ) -> TokenClassifier:
        num_labels, labels = resolve_labels(num_labels, labels, meta, "head" in parts)
        if classifier_dropout is None:
            classifier_dropout = meta.classifier_dropout
        return cls(config, num_labels, labels=labels, classifier_dropout=classifier_dropout)

    def task_meta(self) -> TaskMeta:
        return TaskMeta(self.num_labels, self.labels, None, self.classifier_dropout)


class QuestionAnswering(TaskModel):
    """(B, T) tokens -> (start_logits, end_logits), each (B, T)."""

    kind = "question_answering"
    fresh_ok = ("head.",)

    def __init__(self, config: EncoderConfig, *, classifier_dropout: float | None = None) -> None:
        has_dropout = family(config.model_type).heads.qa_dropout
        dropout = head_dropout(config, self.kind, classifier_dropout) if has_dropout else None
        super().__init__(config, SpanHead(config, dropout, token_transform(config)), pooler=False)
        self.classifier_dropout = classifier_dropout


class MultipleChoice(TaskModel):
    """(B, C, T) tokens, C choices per example -> (B, C) logits: every (context, choice)
    pair is scored alone, and the scores of one example are its logits."""

    kind = "multiple_choice"
    fresh_ok = ("encoder.pooler.", "head.")

    def __init__(self, config: EncoderConfig, *, classifier_dropout: float | None = None) -> None:
        shape = family(config.model_type).heads.choice
        dropout = head_dropout(config, self.kind, classifier_dropout)
        super().__init__(config, SequenceHead(shape, config, 1, dropout), pooler=shape.pooled)
        self.classifier_dropout = classifier_dropout

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, C, T)
        attention_mask: torch.Tensor | None = None,  # (B, C, T)
        token_type_ids: torch.Tensor | None = None,  # (B, C, T)
    ) -> torch.Tensor:  # (B, C)
        B, C, T = input_ids.shape

        def flat(x: torch.Tensor | None) -> torch.Tensor | None:  # (B, C, T) -> (B * C, T)
            return None if x is None else x.reshape(B * C, T)

        scores = super().forward(flat(input_ids), flat(attention_mask), flat(token_type_ids))
        return scores.view(B, C)


# The task model of each task head kind (`families.TASK_KINDS`), which fine-tuning tasks name.
TASK_MODELS: dict[str, type[TaskModel]] = {
    m.kind: m for m in (SequenceClassifier, TokenClassifier, QuestionAnswering, MultipleChoice)
}
