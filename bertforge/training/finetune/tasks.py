"""What a fine-tuning run trains on: `TaskInfo`, saved as `RUN_DIR/task.json` so that
`evaluate` and `predict` work from the run directory alone. Everything that differs by kind
of task goes through `info.task` (`kinds.py`)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from bertforge.atomic import write_text
from bertforge.errors import ConfigError, DataError
from bertforge.models.encoder import encoder_config
from bertforge.tokenization import Tokenizer
from bertforge.training.finetune import prompt
from bertforge.training.finetune.kinds import KINDS, TaskKind

Features = dict[str, list[Any]]
TASK_FILE = "task.json"

logger = logging.getLogger(__name__)


@dataclass
class TaskInfo:
    """What was trained and on what: enough to rebuild data, model and metrics later."""

    kind: str  # a key of kinds.KINDS
    metrics: list[str]
    labels: list[str] | None = None
    max_length: int | None = None  # tokens per input; None: the kind's default (SQuAD 384)
    doc_stride: int = 128  # SQuAD: context tokens consecutive windows share
    stride: int | None = None  # NER: long sentences become windows sharing this many tokens
    strategy: str = "full"
    prompt: dict[str, Any] | None = None  # template and verbalizer of --strategy prompt
    source: str = "custom"  # GLUE task name, "conll2003", "squad", "cmrc2018" or "custom"
    data: dict[str, Any] = field(default_factory=dict)  # paths and column names

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"task kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.max_length is None:
            self.max_length = self.task.max_length

    @property
    def task(self) -> TaskKind:
        return KINDS[self.kind]

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


@dataclass
class Split:
    """One split, read and encoded: the raw examples (for scoring) and model features."""

    examples: list[Any]
    features: Features


def build_model(info: TaskInfo, model_dir: Path, tokenizer: Tokenizer) -> nn.Module:
    """Encoder from any checkpoint of its family plus a freshly initialised task head (or, for
    prompts, the checkpoint's MLM head). Loading a finished run's best/ also loads its head."""
    if info.prompt is not None:
        return prompt.build(info.prompt, model_dir, tokenizer)
    return info.task.model.from_pretrained(model_dir, **info.task.model_options(info))


def fit_max_length(info: TaskInfo, model: nn.Module) -> None:
    """Cap `info.max_length` at what the encoder can embed (`EncoderConfig.max_length`):
    longer inputs are truncated (or, for SQuAD, windowed) to what the model holds."""
    config = encoder_config(model)
    if info.max_length > config.max_length:
        logger.warning(
            "max_length %d is more than the model's %d positions; using %d",
            info.max_length,
            config.max_length,
            config.max_length,
        )
        info.max_length = config.max_length
