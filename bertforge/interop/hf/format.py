"""The Hugging Face checkpoint format behind `from_pretrained` / `save_pretrained`.

Our modules share one canonical state-dict namespace: the encoder under `encoder.`, heads
under their own names (`mlm.`, `nsp.`, `rtd.`, a task model's `head.`). The family of a
checkpoint (config.json `model_type`) says how that namespace is spelled in HF terms
(`Family.hf`); this module handles files, prefixes, checks and error messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.errors import CheckpointError
from bertforge.families import family
from bertforge.interop.hf.config import config_from_hf, config_to_hf
from bertforge.interop.hf.io import (
    CONFIG,
    checkpoint_dir,
    read_config,
    read_weights,
    write_checkpoint,
)
from bertforge.interop.hf.layout import (
    PRETRAINING_PARTS,
    architecture,
    is_ignored,
    keymap,
    kind_of,
    likely_family,
    strip_layout,
)
from bertforge.interop.hf.task import task_from_hf, task_to_hf
from bertforge.pretrained import Module, Pretrained, TaskMeta

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """An HF directory read into our namespace."""

    path: Path
    config: EncoderConfig
    state: dict[str, torch.Tensor]
    origin: dict[str, str]  # our key -> the HF key(s) it came from, for error messages
    unused: list[str] = field(default_factory=list)
    meta: TaskMeta = field(default_factory=TaskMeta)  # label names etc. of a task head
    kind: str | None = None  # the task head its `architectures` names (None: no task head)

    def drop_head(self, reason: str) -> None:
        """Forget every weight outside the encoder (log why): the caller starts a fresh head."""
        dropped = sorted({k.split(".", 1)[0] for k in self.state if not k.startswith("encoder.")})
        if dropped:
            log.info("%s: not using head part(s) %s: %s", self.path, dropped, reason)
        self.state = {k: v for k, v in self.state.items() if k.startswith("encoder.")}

    @property
    def parts(self) -> set[str]:
        """Top-level parts present: 'encoder', 'pooler', 'mlm', 'nsp', 'rtd', 'head'."""
        parts = {k.split(".", 1)[0] for k in self.state}
        if any(k.startswith("encoder.pooler.") for k in self.state):
            parts.add("pooler")
        return parts


def load_config(path: str | Path) -> EncoderConfig:
    """The model config of an HF directory, without reading its weights."""
    d = checkpoint_dir(path)
    hf_config = read_config(d)
    source = str(d / CONFIG)
    return config_from_hf(family(hf_config.get("model_type"), source), hf_config, source)


def load_checkpoint(path: str | Path) -> Checkpoint:
    d = checkpoint_dir(path)
    hf_config = read_config(d)
    source = str(d / CONFIG)
    fam = family(hf_config.get("model_type"), source)
    # A checkpoint of another family is named first: its config would fail this family's
    # checks with a less useful message.
    kind = kind_of(fam, hf_config, source)
    raw = read_weights(d)
    # A task model's head names may repeat a pretraining head's (ModernBERT's `head.dense`).
    heads = [kind] if kind else list(PRETRAINING_PARTS)
    inner = hf_config.get("inner_group_num") or 1
    state, origin, unmatched = keymap(fam, heads, inner).to_ours(strip_layout(fam, raw), str(d))
    if not any(k.startswith("encoder.") for k in state) and (other := likely_family(raw, fam)):
        raise CheckpointError(
            f"{source}: model_type is {fam.name!r} but the weights are laid out as a "
            f"{other[0]} checkpoint (e.g. '{other[1]}'); set model_type to {other[0]!r} or "
            "point at the right directory"
        )
    config = config_from_hf(fam, hf_config, source)
    unused = [k for k in unmatched if not is_ignored(fam, k)]
    if unused:
        log.warning(
            "%s: ignoring %d tensors bertforge does not use: %s", d, len(unused), unused[:5]
        )
    meta = task_from_hf(hf_config, fam.hf, kind, source)
    return Checkpoint(d, config, state, origin, unused, meta, kind)


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


def inherit_head(ckpt: Checkpoint, sources: dict[str, str]) -> None:
    """A fresh task head starts from the pretraining head's weights where transformers does
    (its names coincide): ModernBERT's classifiers inherit the MLM head's dense and norm."""
    for ours, theirs in sources.items():
        for key in [k for k in ckpt.state if k.startswith(theirs)]:
            target = ours + key.removeprefix(theirs)
            ckpt.state[target] = ckpt.state[key]
            ckpt.origin[target] = ckpt.origin[key]


class HFFormat:
    """`Pretrained`'s checkpoint format: HF directories (config.json + safetensors)."""

    def load(self, cls: type[Module], path: Path, **options: Any) -> Module:
        ckpt = load_checkpoint(path)
        if cls.kind is not None and ckpt.kind not in (None, cls.kind):
            # Same part names, different meaning (e.g. a token classifier's `classifier`).
            ckpt.drop_head(f"the checkpoint's head is {ckpt.kind}, not {cls.kind}")
        model = cls.from_checkpoint(ckpt.config, ckpt.parts, ckpt.meta, **options)
        assert isinstance(model, nn.Module)
        if cls.kind is not None and ckpt.kind is None:
            inherit_head(ckpt, family(ckpt.config.model_type).hf.head_from_mlm)
        load_state(model, ckpt, cls.state_prefix, cls.fresh_ok)
        return model.eval()

    def save(self, module: Pretrained, path: Path) -> None:
        assert isinstance(module, nn.Module)
        fam = family(module.config.model_type)
        state = {module.state_prefix + k: v for k, v in module.saved_state().items()}
        parts = frozenset(k.split(".", 1)[0] for k in state)
        arch = architecture(fam, parts, module.kind)
        inner = module.config.inner_group_num
        encoder = {k: v for k, v in state.items() if k.startswith("encoder.")}
        heads = {k: v for k, v in state.items() if not k.startswith("encoder.")}
        hf_state = keymap(fam, (), inner).to_hf(encoder)
        if arch != fam.hf.class_prefix + "Model":  # head models nest the encoder
            hf_state = {fam.hf.base_prefix + k: v for k, v in hf_state.items()}
        head_names = [*(parts & set(PRETRAINING_PARTS)), *([module.kind] if module.kind else [])]
        hf_state |= keymap(fam, head_names, inner).to_hf(heads)
        hf_config = config_to_hf(fam, module.config, arch)
        meta = module.task_meta()
        if meta is not None:
            hf_config.update(task_to_hf(meta, fam.hf, module.kind))
        write_checkpoint(path, hf_config, hf_state)
