"""Span boundary objective (SpanBERT, Joshi et al., 2020): predict each token of a masked span
from the span's boundary tokens and its position inside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bertforge.constants import IGNORE_INDEX
from bertforge.objectives.loss import Batch, LossSums, ce_sums
from bertforge.objectives.mlm import masked_targets

# The batch keys of the collator's "sbo_targets" field, each (B, T) int64, -100 where nothing is
# predicted: the left boundary's position s - 1, the right one's e + 1, and i - s.
SBO_KEYS = ("sbo_left", "sbo_right", "sbo_offset")


@dataclass(frozen=True)
class SpanBoundaryObjective:
    """Cross-entropy of the span boundary head's predictions at the masked positions, next to
    MLM (SpanBERT adds the two losses). The collator's "sbo_targets" field (span masking)
    gives each masked position its span's boundaries and its offset in the span."""

    weight: float = 1.0
    name: str = "sbo"
    fields: tuple[str, ...] = ("mlm_labels", "sbo_targets")
    heads: tuple[str, ...] = ("sbo",)

    def count(self, batch: Batch) -> int:
        return int((batch["mlm_labels"] != IGNORE_INDEX).sum())

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        # (B, T) each, -100 where nothing is predicted: the model picks the masked positions.
        return {k: batch[k] for k in SBO_KEYS}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        # output.sbo_logits: (M, V) at the masked positions, row-major like the labels.
        _, targets = masked_targets(batch["mlm_labels"])
        return ce_sums(output.sbo_logits, targets, IGNORE_INDEX)
