"""Fine-tuning objectives, one per task head, with Hugging Face's semantics: with one
micro-batch the step's loss (sum / count) is the `.loss` transformers reports, a mean over
labelled items (QA: the mean of the start and the end cross-entropy).

One deliberate difference: a batch with no labelled item (every token -100, every answer out
of the window) gives a zero loss instead of PyTorch's NaN, which would poison the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bertforge.constants import IGNORE_INDEX
from bertforge.errors import ConfigError
from bertforge.objectives.loss import Batch, LossSums, ce_sums


@dataclass(frozen=True)
class Classification:
    """Sequence classification or multiple choice: cross-entropy of (B, C) logits against
    (B,) class ids; `problem="regression"`: squared error against float targets."""

    problem: str = "single_label"
    weight: float = 1.0
    name: str = "classification"
    fields: tuple[str, ...] = ("labels",)
    heads: tuple[str, ...] = ("head",)

    def __post_init__(self) -> None:
        if self.problem not in ("single_label", "regression"):
            raise ConfigError(
                f"unknown problem {self.problem!r}; choose single_label or regression"
            )

    def count(self, batch: Batch) -> int:
        labels = batch["labels"]
        return (
            labels.numel() if self.problem == "regression" else int((labels != IGNORE_INDEX).sum())
        )

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        labels = batch["labels"]
        if self.problem == "single_label":
            return ce_sums(output, labels.view(-1), IGNORE_INDEX)
        # transformers: one output squeezed against (B,) targets, else element-wise.
        predicted = output.float().squeeze(-1) if output.shape[-1] == 1 else output.float()
        targets = labels.float().view_as(predicted)
        loss = F.mse_loss(predicted, targets, reduction="sum")
        return LossSums(loss, torch.tensor(targets.numel()))


@dataclass(frozen=True)
class Tagging:
    """Token classification: cross-entropy of (B, T, C) logits against (B, T) tags; -100 at
    padding, specials and word continuations."""

    weight: float = 1.0
    name: str = "tagging"
    fields: tuple[str, ...] = ("labels",)
    heads: tuple[str, ...] = ("head",)

    def count(self, batch: Batch) -> int:
        return int((batch["labels"] != IGNORE_INDEX).sum())

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        return ce_sums(
            output.reshape(-1, output.shape[-1]), batch["labels"].reshape(-1), IGNORE_INDEX
        )


@dataclass(frozen=True)
class SpanBoundary:
    """One end of an extractive answer: cross-entropy of (B, T) start or end logits against
    (B,) positions. As in HF, positions are clamped to [0, T] and T (an answer outside this
    window of a long document) is ignored. QA trains both ends, each with weight 0.5."""

    side: str  # "start" | "end"
    weight: float = 0.5
    heads: tuple[str, ...] = ("head",)

    @property
    def name(self) -> str:
        return self.side

    @property
    def fields(self) -> tuple[str, ...]:
        return (f"{self.side}_positions",)

    def _targets(self, batch: Batch) -> torch.Tensor:
        positions = batch[f"{self.side}_positions"].view(-1)
        return positions.clamp(0, batch["input_ids"].shape[1])

    def count(self, batch: Batch) -> int:
        return int((self._targets(batch) != batch["input_ids"].shape[1]).sum())

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        logits = output[0] if self.side == "start" else output[1]
        return ce_sums(logits, self._targets(batch), ignore_index=logits.shape[1])


def span_objectives() -> list[SpanBoundary]:
    return [SpanBoundary("start"), SpanBoundary("end")]
