"""Objectives: masking (in the collator), pretraining losses as sums + counts, and the
fine-tuning losses (means, as transformers reports them)."""

from bertforge.objectives.finetune import (
    classification_loss,
    multiple_choice_loss,
    qa_loss,
    token_classification_loss,
)
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
    "classification_loss",
    "example_rng",
    "masked_targets",
    "mlm_loss",
    "multiple_choice_loss",
    "nsp_loss",
    "qa_loss",
    "target_counts",
    "token_classification_loss",
    "total_loss",
]
