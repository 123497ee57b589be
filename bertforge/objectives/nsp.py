"""Next-sentence (BERT) / sentence-order (ALBERT) prediction loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertforge.objectives.loss import LossSums

NO_LABEL = -1  # an example without an NSP/SOP label (the instance objective has none)


def nsp_loss(logits: torch.Tensor, labels: torch.Tensor) -> LossSums:
    """Summed cross-entropy of (B, 2) logits against (B,) labels in {0, 1}; -1 is skipped."""
    logits = logits.float()
    valid = labels >= 0
    loss = F.cross_entropy(logits, labels, ignore_index=NO_LABEL, reduction="sum")
    correct = ((logits.detach().argmax(-1) == labels) & valid).sum()
    return LossSums(loss, correct, valid.sum())
