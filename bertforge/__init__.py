"""bertforge: train, fine-tune and serve the BERT family; Hugging Face checkpoints in and out."""

import logging

import bertforge.interop.hf  # noqa: F401  (installs the HF checkpoint format)
from bertforge.api import (
    EvaluateResult,
    ExtendResult,
    FinetuneResult,
    PredictResult,
    PretrainResult,
    distill,
    evaluate,
    export,
    extend_vocab,
    finetune,
    predict,
    pretrain,
)
from bertforge.architectures import (
    MultipleChoice,
    PreTrainingModel,
    QuestionAnswering,
    SequenceClassifier,
    TokenClassifier,
)
from bertforge.config import EncoderConfig
from bertforge.errors import BertforgeError, CheckpointError, ConfigError, DataError, TokenizerError
from bertforge.families import FAMILIES, Family, register_family
from bertforge.models import Encoder, EncoderOutput
from bertforge.models.encoder import set_attention_backend
from bertforge.tokenization import Tokenizer
from bertforge.training.stopping import EXIT_STOPPED, TrainingStopped

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "EXIT_STOPPED",
    "FAMILIES",
    "BertforgeError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Encoder",
    "EncoderConfig",
    "EncoderOutput",
    "EvaluateResult",
    "ExtendResult",
    "Family",
    "FinetuneResult",
    "MultipleChoice",
    "PreTrainingModel",
    "PredictResult",
    "PretrainResult",
    "QuestionAnswering",
    "SequenceClassifier",
    "TokenClassifier",
    "Tokenizer",
    "TokenizerError",
    "TrainingStopped",
    "distill",
    "evaluate",
    "export",
    "extend_vocab",
    "finetune",
    "predict",
    "pretrain",
    "register_family",
    "set_attention_backend",
]
__version__ = "0.1.0"
