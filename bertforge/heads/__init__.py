"""Heads map hidden states to logits; losses live in `bertforge.objectives`."""

from bertforge.heads.mlm import MLMHead
from bertforge.heads.nsp import NSPHead
from bertforge.heads.pretraining import PreTrainingModel, PreTrainingOutput

__all__ = ["MLMHead", "NSPHead", "PreTrainingModel", "PreTrainingOutput"]
