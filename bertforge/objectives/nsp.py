"""Sentence-pair losses: next-sentence (BERT) and sentence-order (ALBERT) prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bertforge.constants import NO_LABEL
from bertforge.objectives.loss import Batch, LossSums, ce_sums


def nsp_loss(logits: torch.Tensor, labels: torch.Tensor) -> LossSums:
    """Summed cross-entropy of (B, 2) logits against (B,) labels in {0, 1}; -1 is skipped."""
    return ce_sums(logits, labels, NO_LABEL)


@dataclass(frozen=True)
class SentencePair:
    """Classify the pair of segments from the pooler: is B the next segment (NSP data) or are
    A and B in order (SOP data)? The label comes from the shards' instances."""

    weight: float = 1.0
    name: str = "nsp"
    fields: tuple[str, ...] = ("nsp_labels",)
    heads: tuple[str, ...] = ("nsp",)

    def count(self, batch: Batch) -> int:
        return int((batch["nsp_labels"] != NO_LABEL).sum())

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        return nsp_loss(output.nsp_logits, batch["nsp_labels"])
