"""`from_pretrained` / `save_pretrained` for bertforge modules, in a checkpoint format plugged
in from above.

Models and heads know this interface only. `bertforge.interop.hf` implements it for the
Hugging Face layout and installs itself when `bertforge` is imported, so
`Encoder.from_pretrained(path)` reads a `transformers` directory while models never import
interop (docs/design.md, "Layers").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypeVar

from torch import nn

from bertforge.config import EncoderConfig

Module = TypeVar("Module", bound="Pretrained")


@dataclass(frozen=True)
class TaskMeta:
    """What a task head needs from, and writes to, a checkpoint besides weights."""

    num_labels: int | None = None
    labels: list[str] | None = None  # names in id order; None when the config has only LABEL_i
    problem: str | None = None  # "single_label" | "regression" | None (infer from num_labels)
    classifier_dropout: float | None = None  # None: the family's default for this head


class CheckpointFormat(Protocol):
    def load(self, cls: type[Module], path: Path, **options: Any) -> Module: ...
    def save(self, module: Pretrained, path: Path) -> None: ...


_format: CheckpointFormat | None = None


def use_format(checkpoint_format: CheckpointFormat) -> None:
    """Install the format `from_pretrained` / `save_pretrained` read and write."""
    global _format
    _format = checkpoint_format


def _installed() -> CheckpointFormat:
    if _format is None:  # importing `bertforge` installs the HF format; this is a bug
        raise RuntimeError("no checkpoint format installed; import bertforge first")
    return _format


class Pretrained:
    """Mixin for our modules: what they tell a checkpoint format, and the two entry points."""

    config: EncoderConfig
    # Prefix that turns `self.state_dict()` keys into the canonical namespace (the encoder
    # under `encoder.`, heads under their own names).
    state_prefix: ClassVar[str] = ""
    # The task head ("sequence_classification", ...) of a task model; None for the bare
    # encoder and pretraining models, whose parts name them.
    kind: ClassVar[str | None] = None
    # Key prefixes (in `self.state_dict()`) a checkpoint may lack; they keep their init.
    fresh_ok: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_checkpoint(
        cls, config: EncoderConfig, parts: set[str], meta: TaskMeta, **options: Any
    ) -> Self:
        """An initialised module for a checkpoint holding `parts` ('encoder', 'pooler', 'mlm',
        ...), with its head metadata `meta` and the caller's `options`; weights come after."""
        raise NotImplementedError

    def task_meta(self) -> TaskMeta | None:
        """Head metadata to save beside the weights; None for modules without a task head."""
        return None

    def saved_state(self) -> dict[str, Any]:
        """The weights a checkpoint holds: all of them, unless a module keeps training-only
        ones (an embedding model's learned loss scale)."""
        assert isinstance(self, nn.Module)
        return self.state_dict()

    @classmethod
    def from_pretrained(cls, path: str | Path, **options: Any) -> Self:
        return _installed().load(cls, Path(path), **options)

    def save_pretrained(self, path: str | Path) -> None:
        assert isinstance(self, nn.Module)
        _installed().save(self, Path(path))
