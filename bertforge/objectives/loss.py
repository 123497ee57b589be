"""Loss sums and their composition, so gradient accumulation equals one big batch.

Each objective returns the *sum* of its per-item losses and the number of items. The training
loop adds the counts over every micro-batch of a global batch (and over ranks) before the
forward passes, then divides each micro-batch's sum by that global count: the accumulated
gradient is then exactly the gradient of the mean over the whole global batch, however it is
split. Under DDP, which averages gradients over ranks, multiply the loss by the world size (or
pass global counts divided by it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from bertforge.objectives.masking import IGNORE_INDEX


@dataclass
class LossSums:
    """One objective on one micro-batch."""

    loss: torch.Tensor  # () float32: summed loss over the counted items (carries the graph)
    correct: torch.Tensor  # () int64: items whose argmax equals the label
    count: torch.Tensor  # () int64: items with a label


def target_counts(batches: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, int]:
    """Labelled items per objective over collated micro-batches: {"mlm": n, "nsp": n}.

    Call it on all micro-batches of a global step (then all-reduce across ranks) to get the
    `global_counts` of `total_loss`.
    """
    counts = {"mlm": 0, "nsp": 0}
    for batch in batches:
        counts["mlm"] += int((batch["mlm_labels"] != IGNORE_INDEX).sum())
        counts["nsp"] += int((batch["nsp_labels"] >= 0).sum())
    return counts


def total_loss(
    sums: Mapping[str, LossSums],
    global_counts: Mapping[str, int | torch.Tensor],
    weights: Mapping[str, float] | None = None,
) -> torch.Tensor:  # () float32
    """sum over objectives of weight * loss_sum / global_count (weights default to 1).

    An objective whose global count is zero (e.g. NSP on a batch without labels) contributes
    zero rather than NaN: its loss sum is zero too.
    """
    weights = weights or {}
    terms = [
        weights.get(name, 1.0) * s.loss / max(int(global_counts[name]), 1)
        for name, s in sums.items()
    ]
    return torch.stack(terms).sum()
