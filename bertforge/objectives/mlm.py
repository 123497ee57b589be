"""Masked-language-model loss over the predicted positions only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bertforge.constants import IGNORE_INDEX
from bertforge.objectives.loss import Batch, LossSums, ce_sums


def masked_targets(mlm_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) labels -> ((B, T) bool positions to predict, (M,) their labels).

    Pass the positions as `PreTrainingModel(..., masked_positions=...)`: it returns logits for
    the same positions in the same (row-major) order as the labels here.
    """
    positions = mlm_labels != IGNORE_INDEX
    return positions, mlm_labels[positions]


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> LossSums:
    """Summed cross-entropy of (M, V) logits against (M,) labels; -100 labels are skipped, so
    dense (B, T, V) logits with (B, T) labels work too."""
    return ce_sums(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), IGNORE_INDEX)


@dataclass(frozen=True)
class MaskedLM:
    """Predict the masked tokens (BERT, RoBERTa, ALBERT...): the collator masks, the model's
    vocabulary projection sees the masked positions only."""

    weight: float = 1.0
    name: str = "mlm"
    fields: tuple[str, ...] = ("mlm_labels",)
    heads: tuple[str, ...] = ("mlm",)

    def count(self, batch: Batch) -> int:
        return int((batch["mlm_labels"] != IGNORE_INDEX).sum())

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"masked_positions": batch["mlm_labels"] != IGNORE_INDEX}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        _, targets = masked_targets(batch["mlm_labels"])
        return mlm_loss(output.mlm_logits, targets)
