"""DistilBERT distillation losses (Sanh et al., 2019): the student matches the teacher's
softened MLM distribution and the direction of its last hidden states.

Semantics follow transformers' `research_projects/distillation/distiller.py`, which averages
each loss over the selected positions ("batchmean" KL, mean cosine loss). Here each is a *sum*
over positions with the number of positions as its count; the step divides by the global count,
which gives the same mean, over the whole global batch however it is split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bertforge.constants import IGNORE_INDEX
from bertforge.objectives.loss import Batch, LossSums


def distill_kl_sums(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> LossSums:
    """T^2 * KL(softmax(t/T) || softmax(s/T)) summed over the rows of (N, V) logits, in fp32,
    and how many rows the student's argmax agrees with the teacher's ("agree").

    The T^2 factor keeps the gradient's scale independent of T (Hinton et al., 2015): the
    gradient of a row w.r.t. its student logits is T * (softmax(s/T) - softmax(t/T)).
    """
    # The teacher is a fixed target: no gradient reaches it even if its output carries a graph.
    teacher = teacher_logits.detach().float()  # (N, V)
    student = student_logits.float()  # (N, V)
    # log_target keeps the teacher's tiny probabilities exact in log space; the value equals
    # kl_div(log_softmax(s/T), softmax(t/T)).
    kl = F.kl_div(
        F.log_softmax(student / temperature, dim=-1),
        F.log_softmax(teacher / temperature, dim=-1),
        reduction="sum",
        log_target=True,
    )
    agree = (student.detach().argmax(-1) == teacher.argmax(-1)).sum()
    count = torch.tensor(student.shape[0], dtype=torch.int64, device=student.device)
    return LossSums(kl * temperature**2, count, {"agree": agree})


def cosine_sums(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> LossSums:
    """1 - cos(student, teacher) summed over the rows of (N, H) hidden states, in fp32
    (`CosineEmbeddingLoss` with target 1, as HF's distiller, but summed)."""
    student = student_hidden.float()  # (N, H)
    teacher = teacher_hidden.detach().float()  # (N, H)
    target = student.new_ones(student.shape[0])  # (N,)
    loss = F.cosine_embedding_loss(student, teacher, target, reduction="sum")
    count = torch.tensor(student.shape[0], dtype=torch.int64, device=student.device)
    return LossSums(loss, count)


@dataclass(frozen=True)
class DistillKL:
    """Match the teacher's temperature-softened MLM distribution: at every real token
    (`masked_only=False`, HF's default `restrict_ce_to_mask=False`) or at the masked ones only.

    The model returns `student_logits` and `teacher_logits` (N, V) at the `distill_positions`
    this objective adds, in row-major order.
    """

    weight: float = 5.0
    name: str = "distill_ce"
    temperature: float = 2.0
    masked_only: bool = False
    fields: tuple[str, ...] = ("mlm_labels",)
    heads: tuple[str, ...] = ("teacher",)

    def positions(self, batch: Batch) -> torch.Tensor:  # (B, T) bool
        """The positions distilled: real tokens, or masked ones (never padding)."""
        real = batch["attention_mask"].bool()  # (B, T)
        if self.masked_only:
            # The collator never labels padding; the AND keeps hand-made batches honest too.
            return real & (batch["mlm_labels"] != IGNORE_INDEX)
        return real

    def count(self, batch: Batch) -> int:
        return int(self.positions(batch).sum())

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"distill_positions": self.positions(batch)}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        return distill_kl_sums(output.student_logits, output.teacher_logits, self.temperature)


@dataclass(frozen=True)
class DistillCosine:
    """Align the direction of the student's last hidden states with the teacher's at every
    real token. The model returns `student_hidden` and `teacher_hidden` (N, H) at the real
    tokens in row-major order, so this objective adds no inputs."""

    weight: float = 1.0
    name: str = "distill_cos"
    fields: tuple[str, ...] = ()
    heads: tuple[str, ...] = ("teacher",)

    def count(self, batch: Batch) -> int:
        return int(batch["attention_mask"].sum())

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        return cosine_sums(output.student_hidden, output.teacher_hidden)
