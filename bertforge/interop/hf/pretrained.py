"""`from_pretrained` / `save_pretrained` for our modules, through one adapter per HF family.

Our modules share one canonical state-dict namespace: the encoder under `encoder.`, heads
under their own names (`mlm.`, `nsp.`, ...). An adapter maps that namespace to its family's
HF keys; this module handles files, prefixes, checks and error messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.errors import BertforgeError, CheckpointError
from bertforge.interop.hf import bert
from bertforge.interop.hf.io import (
    CONFIG,
    checkpoint_dir,
    read_config,
    read_weights,
    write_checkpoint,
)
from bertforge.interop.hf.task import TaskMeta, task_from_hf, task_to_hf

log = logging.getLogger(__name__)

FAMILIES: dict[str, ModuleType] = {bert.MODEL_TYPE: bert}


def family(model_type: Any, source: str) -> ModuleType:
    if model_type not in FAMILIES:
        raise CheckpointError(
            f"{source}: unknown model_type {model_type!r}; supported: {', '.join(FAMILIES)}"
        )
    return FAMILIES[model_type]


@dataclass
class Checkpoint:
    """An HF directory read into our namespace."""

    path: Path
    config: EncoderConfig
    state: dict[str, torch.Tensor]
    origin: dict[str, str]  # our key -> the HF key(s) it came from, for error messages
    unused: list[str] = field(default_factory=list)
    task: TaskMeta = field(default_factory=TaskMeta)  # label names etc. of a task head
    head: str | None = None  # task-head kind its `architectures` names (None: no task head)

    def drop_head(self, reason: str) -> None:
        """Forget every weight outside the encoder (log why): the caller starts a fresh head."""
        dropped = sorted({k.split(".", 1)[0] for k in self.state if not k.startswith("encoder.")})
        if dropped:
            log.info("%s: not using head part(s) %s: %s", self.path, dropped, reason)
        self.state = {k: v for k, v in self.state.items() if k.startswith("encoder.")}

    @property
    def parts(self) -> set[str]:
        """Top-level parts present: 'encoder', 'pooler', 'mlm', 'nsp', ..."""
        parts = {k.split(".", 1)[0] for k in self.state}
        if any(k.startswith("encoder.pooler.") for k in self.state):
            parts.add("pooler")
        return parts


def load_checkpoint(path: str | Path) -> Checkpoint:
    d = checkpoint_dir(path)
    hf_config = read_config(d)
    source = str(d / CONFIG)
    fam = family(hf_config.get("model_type"), source)
    try:
        config = EncoderConfig(model_type=fam.MODEL_TYPE, **fam.config_from_hf(hf_config, source))
    except BertforgeError as e:
        raise CheckpointError(f"{source}: {e}") from None
    hf_state = fam.strip_layout(read_weights(d))
    state, origin, unmatched = fam.KEYS.to_ours(hf_state, str(d))
    unused = [k for k in unmatched if k not in fam.IGNORED]
    if unused:
        log.warning(
            "%s: ignoring %d tensors bertforge does not use: %s", d, len(unused), unused[:5]
        )
    task = task_from_hf(hf_config, source)
    return Checkpoint(d, config, state, origin, unused, task, fam.head_of(hf_config))


def load_state(
    module: nn.Module, ckpt: Checkpoint, prefix: str, fresh_ok: tuple[str, ...] = ()
) -> None:
    """Copy the checkpoint into `module` (whose keys are `prefix`-less), checking every shape.

    Keys starting with one of `fresh_ok` may be absent: they keep their initialisation (the
    usual start of fine-tuning: a new task head on a pretrained encoder), and a log line says so.
    """
    expected = module.state_dict()
    state = {k.removeprefix(prefix): v for k, v in ckpt.state.items() if k.startswith(prefix)}
    where = f"'{ckpt.path}'"
    fresh = sorted(k for k in set(expected) - set(state) if k.startswith(fresh_ok))
    if fresh:
        groups = sorted({k.rsplit(".", 1)[0] for k in fresh})
        log.info("%s has no weights for %s; initialised them fresh", where, ", ".join(groups))
        expected = {k: v for k, v in expected.items() if k not in fresh}
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(
            f"{where} lacks weights for {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + "; the file is incomplete or of a different architecture"
        )
    for key, want in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(
                f"{where}: '{ckpt.origin[prefix + key]}' has shape {tuple(got.shape)} but "
                f"config.json implies {tuple(want.shape)}; config and weights do not match"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        heads = sorted({k.split(".", 1)[0] for k in extra})
        log.info("%s: not loading %d tensors of part(s) %s", ckpt.path, len(extra), heads)
    module.load_state_dict({k: state[k] for k in expected}, strict=not fresh)


class HFPretrained:
    """Mixin giving a module `from_pretrained` / `save_pretrained` in HF format."""

    config: EncoderConfig
    state_prefix = ""  # prefix that turns `self.state_dict()` keys into the canonical namespace
    # Task-head kind ("sequence_classification", ...) for modules whose parts alone do not name
    # an HF architecture; adapters map it to their class name. None for encoder/pretraining.
    hf_head: str | None = None
    # Key prefixes (in `self.state_dict()`) a checkpoint may lack; they are initialised fresh.
    fresh_ok: tuple[str, ...] = ()

    @classmethod
    def from_parts(
        cls, config: EncoderConfig, parts: set[str], task: TaskMeta, **options: Any
    ) -> Self:
        """Build an empty module for a checkpoint that has `parts` (see `Checkpoint.parts`);
        `task` is the checkpoint's head metadata, `options` what the caller passed."""
        raise NotImplementedError

    def task_meta(self) -> TaskMeta | None:
        """Head metadata to write into config.json; None for modules without a task head."""
        return None

    @classmethod
    def from_pretrained(cls, path: str | Path, **options: Any) -> Self:
        ckpt = load_checkpoint(path)
        if cls.hf_head is not None and ckpt.head not in (None, cls.hf_head):
            # Same part names, different meaning (e.g. a token classifier's `classifier`).
            ckpt.drop_head(f"the checkpoint's head is {ckpt.head}, not {cls.hf_head}")
        model = cls.from_parts(ckpt.config, ckpt.parts, ckpt.task, **options)
        assert isinstance(model, nn.Module)
        load_state(model, ckpt, cls.state_prefix, cls.fresh_ok)
        return model.eval()

    def save_pretrained(self, path: str | Path) -> None:
        assert isinstance(self, nn.Module)
        fam = family(self.config.model_type, "config")
        state = {self.state_prefix + k: v for k, v in self.state_dict().items()}
        parts = frozenset(k.split(".", 1)[0] for k in state)
        arch = fam.architecture(parts, self.hf_head)
        hf_state = fam.add_layout(fam.KEYS.to_hf(state), arch)
        meta = self.task_meta()
        hf_config = fam.config_to_hf(self.config, arch)
        if meta is not None:
            hf_config.update(task_to_hf(meta))
        write_checkpoint(Path(path), hf_config, hf_state)
