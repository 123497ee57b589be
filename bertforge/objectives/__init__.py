"""Objectives: masking (in the collator), and losses as sums + counts behind one protocol
(`loss.Objective`) for pretraining (MLM, NSP/SOP) and fine-tuning (one per task head)."""

from __future__ import annotations

from collections.abc import Mapping

from bertforge.constants import IGNORE_INDEX
from bertforge.errors import ConfigError
from bertforge.objectives.finetune import (
    Classification,
    SpanBoundary,
    Tagging,
    span_objectives,
)
from bertforge.objectives.loss import (
    Batch,
    LossSums,
    Objective,
    ce_sums,
    count_targets,
    total_loss,
)
from bertforge.objectives.masking import (
    Masker,
    MaskingConfig,
    MaskingVocab,
    Selection,
    example_rng,
)
from bertforge.objectives.mlm import MaskedLM, masked_targets, mlm_loss, sample_tokens
from bertforge.objectives.nsp import SentencePair, nsp_loss

# Pretraining objectives by the name a recipe's [objectives] table gives them.
PRETRAINING: dict[str, type] = {"mlm": MaskedLM, "nsp": SentencePair}


def pretraining_objectives(weights: Mapping[str, float]) -> list[Objective]:
    """Objectives from a recipe's {name: weight} table (weight 0 leaves one out)."""
    unknown = sorted(set(weights) - set(PRETRAINING))
    if unknown:
        raise ConfigError(
            f"[objectives]: unknown objective(s) {', '.join(unknown)}; "
            f"choose from {', '.join(PRETRAINING)}"
        )
    return [PRETRAINING[name](weight=float(w)) for name, w in weights.items() if w]


__all__ = [
    "IGNORE_INDEX",
    "PRETRAINING",
    "Batch",
    "Classification",
    "LossSums",
    "MaskedLM",
    "Masker",
    "MaskingConfig",
    "MaskingVocab",
    "Objective",
    "Selection",
    "SentencePair",
    "SpanBoundary",
    "Tagging",
    "ce_sums",
    "count_targets",
    "example_rng",
    "masked_targets",
    "mlm_loss",
    "nsp_loss",
    "pretraining_objectives",
    "sample_tokens",
    "span_objectives",
    "total_loss",
]
