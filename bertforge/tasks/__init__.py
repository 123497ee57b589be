"""Fine-tuning tasks: readers, feature building, post-processing and metrics (no models).

- GLUE and user CSV/TSV/JSONL classification/regression: `read_glue`, `read_examples`,
  `encode_examples`.
- CoNLL-2003 NER: `read_conll`, `ner_labels`, `encode_token_examples`,
  `predictions_to_tags`.
- SQuAD-format QA: `read_squad`, `encode_train_features`, `encode_eval_features`,
  `postprocess_predictions`, `squad_evaluate`; CMRC 2018 (Chinese) is scored by
  `cmrc_evaluate`.
- `compute(metric_names, predictions, labels)` for everything but SQuAD.
"""

from bertforge.tasks.classification import Example, encode_examples
from bertforge.tasks.cmrc_eval import cmrc_evaluate
from bertforge.tasks.conll import Sentence, ner_labels, ner_scheme, read_conll
from bertforge.tasks.glue import GLUE_TASKS, GlueTask, get_task, read_glue
from bertforge.tasks.metrics import METRICS, compute, entity_report
from bertforge.tasks.squad import Answer, SquadExample, read_squad
from bertforge.tasks.squad_eval import squad_evaluate
from bertforge.tasks.squad_features import (
    encode_eval_features,
    encode_train_features,
    postprocess_predictions,
)
from bertforge.tasks.text import ExampleSet, read_examples
from bertforge.tasks.token_classification import encode_examples as encode_token_examples
from bertforge.tasks.token_classification import predictions_to_tags

__all__ = [
    "GLUE_TASKS",
    "METRICS",
    "Answer",
    "Example",
    "ExampleSet",
    "GlueTask",
    "Sentence",
    "SquadExample",
    "cmrc_evaluate",
    "compute",
    "encode_eval_features",
    "encode_examples",
    "encode_token_examples",
    "encode_train_features",
    "entity_report",
    "get_task",
    "ner_labels",
    "ner_scheme",
    "postprocess_predictions",
    "predictions_to_tags",
    "read_conll",
    "read_examples",
    "read_glue",
    "read_squad",
    "squad_evaluate",
]
