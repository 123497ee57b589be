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
    return Checkpoint(d, config, state, origin, unused)


def load_state(module: nn.Module, ckpt: Checkpoint, prefix: str) -> None:
    """Copy the checkpoint into `module` (whose keys are `prefix`-less), checking every shape."""
    expected = module.state_dict()
    state = {k.removeprefix(prefix): v for k, v in ckpt.state.items() if k.startswith(prefix)}
    where = f"'{ckpt.path}'"
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
    module.load_state_dict({k: state[k] for k in expected})


class HFPretrained:
    """Mixin giving a module `from_pretrained` / `save_pretrained` in HF format."""

    config: EncoderConfig
    state_prefix = ""  # prefix that turns `self.state_dict()` keys into the canonical namespace

    @classmethod
    def from_parts(cls, config: EncoderConfig, parts: set[str]) -> Self:
        """Build an empty module for a checkpoint that has `parts` (see `Checkpoint.parts`)."""
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Self:
        ckpt = load_checkpoint(path)
        model = cls.from_parts(ckpt.config, ckpt.parts)
        assert isinstance(model, nn.Module)
        load_state(model, ckpt, cls.state_prefix)
        return model.eval()

    def save_pretrained(self, path: str | Path) -> None:
        assert isinstance(self, nn.Module)
        fam = family(self.config.model_type, "config")
        state = {self.state_prefix + k: v for k, v in self.state_dict().items()}
        parts = frozenset(k.split(".", 1)[0] for k in state)
        if parts not in fam.ARCHITECTURES:
            raise CheckpointError(f"no {fam.MODEL_TYPE} HF architecture has parts {sorted(parts)}")
        arch = fam.ARCHITECTURES[parts]
        hf_state = fam.add_layout(fam.KEYS.to_hf(state), arch)
        write_checkpoint(Path(path), fam.config_to_hf(self.config, arch), hf_state)
