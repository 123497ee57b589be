"""Pretraining objectives: masking (in the collator) and losses returned as sums + counts."""

from bertforge.objectives.loss import LossSums, target_counts, total_loss
from bertforge.objectives.masking import (
    IGNORE_INDEX,
    Masker,
    MaskingConfig,
    MaskingVocab,
    Selection,
    example_rng,
)
from bertforge.objectives.mlm import masked_targets, mlm_loss
from bertforge.objectives.nsp import nsp_loss

__all__ = [
    "IGNORE_INDEX",
    "LossSums",
    "Masker",
    "MaskingConfig",
    "MaskingVocab",
    "Selection",
    "example_rng",
    "masked_targets",
    "mlm_loss",
    "nsp_loss",
    "target_counts",
    "total_loss",
]
