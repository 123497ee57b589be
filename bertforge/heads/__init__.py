"""Heads map encoder output to logits; task models are an encoder plus one head. Losses live
in `bertforge.objectives`."""

from bertforge.heads.classification import SequenceHead, SpanHead, TokenHead
from bertforge.heads.electra import tie_embeddings
from bertforge.heads.mlm import MLMHead
from bertforge.heads.nsp import NSPHead
from bertforge.heads.pretraining import PreTrainingModel, PreTrainingOutput
from bertforge.heads.rtd import RTDHead
from bertforge.heads.sbo import SBOHead
from bertforge.heads.student import student_from_teacher
from bertforge.heads.task import (
    MultipleChoice,
    QuestionAnswering,
    SequenceClassifier,
    TaskModel,
    TokenClassifier,
)

__all__ = [
    "MLMHead",
    "MultipleChoice",
    "NSPHead",
    "PreTrainingModel",
    "PreTrainingOutput",
    "QuestionAnswering",
    "RTDHead",
    "SBOHead",
    "SequenceClassifier",
    "SequenceHead",
    "SpanHead",
    "TaskModel",
    "TokenClassifier",
    "TokenHead",
    "student_from_teacher",
    "tie_embeddings",
]
