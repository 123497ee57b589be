"""Heads map hidden states to logits; losses live in `bertforge.objectives`."""

from bertforge.heads.choice import MultipleChoice
from bertforge.heads.mlm import MLMHead
from bertforge.heads.nsp import NSPHead
from bertforge.heads.pretraining import PreTrainingModel, PreTrainingOutput
from bertforge.heads.qa import QuestionAnswering
from bertforge.heads.sequence import SequenceClassifier
from bertforge.heads.token import TokenClassifier

__all__ = [
    "MLMHead",
    "MultipleChoice",
    "NSPHead",
    "PreTrainingModel",
    "PreTrainingOutput",
    "QuestionAnswering",
    "SequenceClassifier",
    "TokenClassifier",
]
