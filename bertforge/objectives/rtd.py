"""Replaced-token detection (ELECTRA, Clark et al., 2020): the discriminator says, for every
real token, whether the generator replaced it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bertforge.objectives.loss import Batch, LossSums


def rtd_loss(
    logits: torch.Tensor,  # (B, T): "replaced" logits
    replaced: torch.Tensor,  # (B, T) bool: the generator's sample differs from the original
    attention_mask: torch.Tensor,  # (B, T): 1 on real tokens; padding is never scored
) -> LossSums:
    """Summed binary cross-entropy over the real tokens, with accuracy and the counts that
    give precision and recall of "replaced" (true positives, predicted, actual)."""
    real = attention_mask.bool()
    logits, target = logits[real].float(), replaced[real].float()  # (N,)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    predicted = logits.detach() > 0
    actual = target.bool()
    metrics = {
        "acc": (predicted == actual).sum(),
        "tp": (predicted & actual).sum(),
        "predicted": predicted.sum(),
        "replaced": actual.sum(),
    }
    return LossSums(loss, real.sum(), metrics)


@dataclass(frozen=True)
class ReplacedTokenDetection:
    """The discriminator's loss over every real token, weighted λ = 50 against the
    generator's MLM loss as in the paper. The model (`architectures.ElectraPreTraining`) samples the
    replacements at the masked positions and returns which tokens changed."""

    weight: float = 50.0
    name: str = "rtd"
    # The generator's masks (the discriminator sees the originals with samples in their place)
    # and the uniform draws the generator samples them with.
    fields: tuple[str, ...] = ("mlm_labels", "sample_uniforms")
    # The discriminator's head; its generator is the run's MLM (`architectures.electra`).
    heads: tuple[str, ...] = ("rtd",)

    def count(self, batch: Batch) -> int:
        return int(batch["attention_mask"].sum())

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"mlm_labels": batch["mlm_labels"], "sample_uniforms": batch["sample_uniforms"]}

    def loss(self, output: Any, batch: Batch) -> LossSums:
        return rtd_loss(output.rtd_logits, output.replaced, batch["attention_mask"])

    @staticmethod
    def rates(sums: dict[str, float]) -> dict[str, float]:
        """Precision and recall of "replaced" from the summed counts (the raw counts are not
        logged: as means over tokens they say little)."""
        tp = sums.pop("tp", 0)
        predicted, replaced = sums.pop("predicted", 0), sums.pop("replaced", 0)
        return {
            "precision": tp / predicted if predicted else 0.0,
            "recall": tp / replaced if replaced else 0.0,
            "replaced_share": replaced / max(sums["count"], 1),
        }
