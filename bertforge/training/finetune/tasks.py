"""Per-task pieces of fine-tuning: which data to read, which head to build, how to encode
examples, the loss, and how model outputs become metric inputs.

A `TaskInfo` is everything a run directory needs (saved as `RUN_DIR/task.json`) so that
`evaluate` and `predict` work from the run directory alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bertforge import heads, tasks
from bertforge.atomic import write_text
from bertforge.errors import ConfigError, DataError
from bertforge.models import Encoder
from bertforge.objectives import finetune as losses
from bertforge.tokenization import Tokenizer
from bertforge.training.finetune import prompt

Features = dict[str, list[Any]]
KINDS = ("classification", "regression", "ner", "squad")
TASK_FILE = "task.json"

logger = logging.getLogger(__name__)


@dataclass
class TaskInfo:
    """What was trained and on what: enough to rebuild data, model and metrics later."""

    kind: str  # one of KINDS
    metrics: list[str]
    labels: list[str] | None = None
    max_length: int = 128
    doc_stride: int = 128  # SQuAD: context tokens consecutive windows share
    stride: int | None = None  # NER: long sentences become windows sharing this many tokens
    strategy: str = "full"
    prompt: dict[str, Any] | None = None  # template and verbalizer of --strategy prompt
    source: str = "custom"  # GLUE task name, "conll2003", "squad" or "custom"
    data: dict[str, Any] = field(default_factory=dict)  # paths and column names

    @property
    def main_metric(self) -> str:
        """The dev metric that selects the best checkpoint."""
        return self.metrics[0]

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    def save(self, run_dir: Path) -> None:
        write_text(run_dir / TASK_FILE, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> TaskInfo:
        path = run_dir / TASK_FILE
        if not path.is_file():
            raise DataError(f"'{run_dir}' has no {TASK_FILE}; pass a `bertforge finetune` run dir")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def _model_kwargs(info: TaskInfo) -> dict[str, Any]:
    if info.kind == "squad":
        return {}
    kwargs: dict[str, Any] = {"num_labels": info.num_labels, "labels": info.labels}
    if info.kind == "regression":
        kwargs["problem"] = "regression"
    return kwargs


def _head_class(info: TaskInfo) -> type[nn.Module]:
    if info.kind in ("classification", "regression"):
        return heads.SequenceClassifier
    if info.kind == "ner":
        return heads.TokenClassifier
    return heads.QuestionAnswering


def build_model(info: TaskInfo, model_dir: Path, tokenizer: Tokenizer) -> nn.Module:
    """Encoder from any BERT checkpoint plus a freshly initialised task head (or, for
    prompts, the checkpoint's MLM head). Loading a finished run's best/ also loads its head."""
    if info.prompt is not None:
        return prompt.build(info.prompt, model_dir, tokenizer)
    return _head_class(info).from_pretrained(model_dir, **_model_kwargs(info))


def fit_max_length(info: TaskInfo, model: nn.Module) -> None:
    """Cap `info.max_length` at the encoder's learned positions: longer inputs could not be
    embedded, so they are truncated (or, for SQuAD, windowed) to what the model holds."""
    config = next(m.config for m in model.modules() if isinstance(m, Encoder))
    positions = config.max_position_embeddings
    if config.position == "absolute" and info.max_length > positions:
        logger.warning(
            "max_length %d is more than the model's %d positions; using %d",
            info.max_length,
            positions,
            positions,
        )
        info.max_length = positions


def compute_loss(info: TaskInfo, logits: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The head's loss; `logits` is what it returns (a (start, end) pair for SQuAD)."""
    if info.kind == "squad":
        return losses.qa_loss(*logits, batch["start_positions"], batch["end_positions"])
    if info.kind == "ner":
        return losses.token_classification_loss(logits, batch["labels"])
    problem = "regression" if info.kind == "regression" else "single_label"
    return losses.classification_loss(logits, batch["labels"], problem)


def to_rows(info: TaskInfo, logits: Any, lengths: list[int]) -> list[Any]:
    """Per-example numpy outputs with padding cut off, in batch order."""
    if info.kind == "squad":
        start, end = (t.float().cpu().numpy() for t in logits)
        return [(start[i, :n], end[i, :n]) for i, n in enumerate(lengths)]
    array = logits.float().cpu().numpy()
    if info.kind == "ner":
        return [array[i, :n] for i, n in enumerate(lengths)]
    return list(array)


@dataclass
class Split:
    """One split, read and encoded: the raw examples (for scoring) and model features."""

    examples: list[Any]
    features: Features


def read_split(info: TaskInfo, split: str, limit: int | None = None) -> list[Any]:
    """Examples of `split` ("train" or "dev"), the first `limit` of them when given."""
    data = info.data
    if info.kind == "ner":
        examples = tasks.read_conll(Path(data["dir"]) / data[split])
    elif info.kind == "squad":
        examples = tasks.read_squad(Path(data["dir"]) / data[split])
    elif info.source != "custom":
        task = tasks.get_task(info.source)
        examples = tasks.read_glue(task, data["dir"], "train" if split == "train" else data["dev"])
    else:
        examples = tasks.read_examples(
            data[split],
            data["text_column"],
            data.get("pair_column"),
            data["label_column"],
            labels=info.labels,
            task="regression" if info.kind == "regression" else "classification",
        ).examples
    return examples[:limit] if limit else examples


def encode(info: TaskInfo, tokenizer: Tokenizer, examples: list[Any], train: bool) -> Features:
    if info.kind == "ner":
        return tasks.encode_token_examples(
            tokenizer, examples, info.max_length, list(info.labels or []), stride=info.stride
        )
    if info.kind == "squad":
        fn = tasks.encode_train_features if train else tasks.encode_eval_features
        return fn(tokenizer, examples, info.max_length, info.doc_stride)
    if info.prompt is not None:
        examples = prompt.fill(info.prompt, tokenizer, examples)
    return tasks.encode_examples(tokenizer, examples, info.max_length)


def train_keys(info: TaskInfo) -> tuple[str, ...]:
    """Feature columns the loss needs besides the model inputs."""
    return ("start_positions", "end_positions") if info.kind == "squad" else ("labels",)


def score(info: TaskInfo, split: Split, rows: list[Any]) -> dict[str, float]:
    """Dev metrics from per-row outputs (`to_rows`), in feature order."""
    if info.kind == "squad":
        answers = squad_answers(split, rows)
        result = tasks.squad_evaluate(split.examples, answers)
        # EM and F1; v2.0 data adds the HasAns_*/NoAns_* breakdown of evaluate-v2.0.py.
        return {k: v for k, v in result.items() if k != "total"}
    if info.kind == "ner":
        predicted = ner_tags(info, split, rows)
        gold = [s.tags for s in split.examples]
        return tasks.compute(info.metrics, predicted, gold)
    labels = split.features["labels"]
    return tasks.compute(info.metrics, class_predictions(info, rows), labels)


def class_predictions(info: TaskInfo, rows: list[Any]) -> list[Any]:
    if info.kind == "regression":
        return [float(r.reshape(-1)[0]) for r in rows]
    return [int(np.argmax(r)) for r in rows]


def ner_tags(info: TaskInfo, split: Split, rows: list[Any]) -> list[list[str]]:
    predictions = [r.argmax(-1).tolist() for r in rows]
    return tasks.predictions_to_tags(
        split.features, predictions, split.examples, list(info.labels or [])
    )


def squad_answers(split: Split, rows: list[Any]) -> dict[str, str]:
    # SQuAD v2.0 data (some unanswerable questions) may answer "", as squad_evaluate scores it.
    version_2 = any(e.is_impossible for e in split.examples)
    starts, ends = [r[0] for r in rows], [r[1] for r in rows]
    return tasks.postprocess_predictions(
        split.examples, split.features, starts, ends, version_2=version_2
    )


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"task kind {kind!r} is not one of {', '.join(KINDS)}")
