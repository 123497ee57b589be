"""Task data formats: readers of each task's files and their model features (no models, no
metrics).

- GLUE TSVs (`read_glue`, `GLUE_SPECS`) and user CSV/TSV/JSONL files (`read_examples`), as
  `Example`s encoded by `encode_examples`;
- CoNLL columns and one-character-per-line BIO (`read_conll`), encoded per word by
  `encode_token_examples` and read back by `predictions_to_tags`;
- SQuAD-format JSON (`read_squad`), windowed by `encode_train_features` /
  `encode_eval_features`, answered by `postprocess_predictions`.
"""

from bertforge.tasks.formats.conll import Sentence, ner_labels, ner_scheme, read_conll
from bertforge.tasks.formats.examples import Example, encode_examples
from bertforge.tasks.formats.glue_tsv import (
    GLUE_SPECS,
    GlueSpec,
    glue_spec,
    read_glue,
    read_glue_file,
)
from bertforge.tasks.formats.squad_json import Answer, SquadExample, read_squad
from bertforge.tasks.formats.squad_windows import (
    encode_eval_features,
    encode_train_features,
    postprocess_predictions,
)
from bertforge.tasks.formats.text_files import ExampleSet, read_examples, read_records, record_field
from bertforge.tasks.formats.token_features import encode_examples as encode_token_examples
from bertforge.tasks.formats.token_features import predictions_to_tags

__all__ = [
    "GLUE_SPECS",
    "Answer",
    "Example",
    "ExampleSet",
    "GlueSpec",
    "Sentence",
    "SquadExample",
    "encode_eval_features",
    "encode_examples",
    "encode_token_examples",
    "encode_train_features",
    "glue_spec",
    "ner_labels",
    "ner_scheme",
    "postprocess_predictions",
    "predictions_to_tags",
    "read_conll",
    "read_examples",
    "read_glue",
    "read_glue_file",
    "read_records",
    "read_squad",
    "record_field",
]
