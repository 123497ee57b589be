"""Whole models, as config.json's `architectures` names them: an encoder plus heads.

PreTrainingModel       ...ForPreTraining / ...ForMaskedLM (MLM, NSP/SOP, RTD, SBO heads)
SequenceClassifier     ...ForSequenceClassification
TokenClassifier        ...ForTokenClassification
QuestionAnswering      ...ForQuestionAnswering
MultipleChoice         ...ForMultipleChoice
ElectraPreTraining     ELECTRA's generator + discriminator, trained together
Distillation           a student cut from a frozen teacher (DistilBERT)
"""

from bertforge.architectures.distillation import Distillation, student_from_teacher
from bertforge.architectures.electra import ElectraPreTraining, tie_embeddings
from bertforge.architectures.pretraining import PreTrainingModel, PreTrainingOutput
from bertforge.architectures.task import (
    TASK_MODELS,
    MultipleChoice,
    QuestionAnswering,
    SequenceClassifier,
    TaskModel,
    TokenClassifier,
)

__all__ = [
    "TASK_MODELS",
    "Distillation",
    "ElectraPreTraining",
    "MultipleChoice",
    "PreTrainingModel",
    "PreTrainingOutput",
    "QuestionAnswering",
    "SequenceClassifier",
    "TaskModel",
    "TokenClassifier",
    "student_from_teacher",
    "tie_embeddings",
]
