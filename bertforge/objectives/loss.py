"""The objective protocol, loss sums and their composition.

An objective names the batch fields it reads, counts its labelled items in a micro-batch, may
add model inputs (MLM: which positions reach the vocabulary projection) and turns the model's
output into a *sum* of per-item losses plus the item count and metric sums. The step adds the
counts over every micro-batch of a global batch (and over ranks) before the forward passes,
then divides each micro-batch's sum by that global count: the accumulated gradient is exactly
the gradient of the mean over the whole global batch, however it is split (under DDP, which
averages gradients over ranks, the loss is scaled by the world size). With one micro-batch
this is the per-batch mean transformers reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from bertforge.objectives.cross_entropy import summed_cross_entropy

Batch = Mapping[str, torch.Tensor]


@dataclass
class LossSums:
    """One objective on one micro-batch."""

    loss: torch.Tensor  # () float32: summed loss over the counted items (carries the graph)
    count: torch.Tensor  # () int64: items with a label
    # Sums over the counted items, logged as `{objective}_{name}` = sum / count ("acc": the
    # number predicted right).
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)

    def mean(self) -> torch.Tensor:
        """The loss averaged over this micro-batch's items (zero, not NaN, when none)."""
        return self.loss / self.count.clamp(min=1)


def ce_sums(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> LossSums:
    """Cross-entropy of (N, C) logits against (N,) labels, summed over the non-ignored items
    (fp32 softmax under autocast), and how many of them the argmax gets right ("acc")."""
    loss, count, correct = summed_cross_entropy(logits, labels, ignore_index)
    return LossSums(loss, count, {"acc": correct})


class Objective(Protocol):
    name: str  # logged as {name}_loss, {name}_{metric}
    weight: float  # its share of the training loss
    fields: tuple[str, ...]  # batch fields it reads, which the collator must produce
    # Model parts it reads: pretraining heads ("mlm", "nsp", "sbo", "rtd"), a "teacher",
    # or a task model's "head"; the run builds the model that has them all.
    heads: tuple[str, ...]

    def count(self, batch: Batch) -> int:
        """Labelled items in a micro-batch: what its loss sum is divided by."""
        ...

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Model inputs it adds to input_ids / attention_mask / token_type_ids."""
        ...

    def loss(self, output: Any, batch: Batch) -> LossSums: ...

    # Optional: `rates(sums) -> {metric: value}` pops metric sums that are not means over the
    # counted items (e.g. true positives) and returns ratios made from them (precision).


def count_targets(objectives: Sequence[Objective], batches: Iterable[Batch]) -> dict[str, int]:
    """Labelled items per objective over the micro-batches of one step: {"mlm": n, ...}.

    All-reduce the result across ranks to get the `global_counts` of `total_loss`.
    """
    counts = {o.name: 0 for o in objectives}
    for batch in batches:
        for o in objectives:
            counts[o.name] += o.count(batch)
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
