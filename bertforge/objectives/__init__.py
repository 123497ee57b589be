"""Objectives: masking (in the collator), and losses as sums + counts behind one protocol
(`loss.Objective`) for pretraining (MLM, NSP/SOP, RTD, SBO, distillation) and fine-tuning (one
per task head)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bertforge.constants import IGNORE_INDEX
from bertforge.errors import ConfigError
from bertforge.objectives.distill import DistillCosine, DistillKL, cosine_sums, distill_kl_sums
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
from bertforge.objectives.mlm import MaskedLM, masked_targets, mlm_loss
from bertforge.objectives.nsp import SentencePair, nsp_loss
from bertforge.objectives.rtd import ReplacedTokenDetection, rtd_loss
from bertforge.objectives.sbo import SpanBoundaryObjective

# Pretraining objectives by the name a recipe's [objectives] table gives them.
PRETRAINING: dict[str, type] = {
    "mlm": MaskedLM,
    "nsp": SentencePair,
    "rtd": ReplacedTokenDetection,
    "sbo": SpanBoundaryObjective,
    "distill_ce": DistillKL,
    "distill_cos": DistillCosine,
}
# Objectives that need a teacher: a run with any of them is a distillation.
DISTILL_OBJECTIVES = frozenset({"distill_ce", "distill_cos"})


def pretraining_objectives(
    weights: Mapping[str, float], options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Objective]:
    """Objectives from a recipe's {name: weight} table (weight 0 leaves one out), with the
    settings of those that have any (`options[name]`, e.g. the distillation temperature)."""
    unknown = sorted(set(weights) - set(PRETRAINING))
    if unknown:
        raise ConfigError(
            f"[objectives]: unknown objective(s) {', '.join(unknown)}; "
            f"choose from {', '.join(PRETRAINING)}"
        )
    options = options or {}
    return [
        PRETRAINING[name](weight=float(w), **options.get(name, {}))
        for name, w in weights.items()
        if w
    ]


__all__ = [
    "DISTILL_OBJECTIVES",
    "IGNORE_INDEX",
    "PRETRAINING",
    "Batch",
    "Classification",
    "DistillCosine",
    "DistillKL",
    "LossSums",
    "MaskedLM",
    "Masker",
    "MaskingConfig",
    "MaskingVocab",
    "Objective",
    "ReplacedTokenDetection",
    "Selection",
    "SentencePair",
    "SpanBoundary",
    "SpanBoundaryObjective",
    "Tagging",
    "ce_sums",
    "cosine_sums",
    "count_targets",
    "distill_kl_sums",
    "example_rng",
    "masked_targets",
    "mlm_loss",
    "nsp_loss",
    "pretraining_objectives",
    "rtd_loss",
    "span_objectives",
    "total_loss",
]
