"""Masked-language-model loss over the predicted positions only."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertforge.objectives.loss import LossSums
from bertforge.objectives.masking import IGNORE_INDEX


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
    logits = logits.reshape(-1, logits.shape[-1]).float()  # fp32 softmax under autocast
    labels = labels.reshape(-1)
    valid = labels != IGNORE_INDEX
    loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    correct = ((logits.detach().argmax(-1) == labels) & valid).sum()
    return LossSums(loss, correct, valid.sum())
