"""A family's HF layout applied to whole state dicts: prefixes, key maps, class names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from bertforge.errors import CheckpointError
from bertforge.families import FAMILIES, TASK_KINDS, Family
from bertforge.interop.hf.keymap import KeyMap

PRETRAINING_PARTS = ("mlm", "nsp", "rtd")
_LEGACY_LEAVES = {"gamma": "weight", "beta": "bias"}  # TF-era LayerNorm names


def task_suffix(kind: str) -> str:
    """'sequence_classification' -> 'ForSequenceClassification'."""
    return "For" + "".join(word.capitalize() for word in kind.split("_"))


def keymap(fam: Family, heads: Iterable[str], inner: int) -> KeyMap:
    """Encoder rules plus those of each head part or task kind in `heads`."""
    rules = list(fam.hf.encoder_keys)
    for head in heads:
        rules += fam.hf.head_keys.get(head, ())
    return KeyMap(rules, inner)


def kind_of(fam: Family, hf_config: dict[str, Any], source: str) -> str | None:
    """The task kind its `architectures` names (None: encoder or pretraining model)."""
    prefix = fam.hf.class_prefix
    for name in hf_config.get("architectures") or []:
        if not isinstance(name, str) or not name.startswith(prefix):
            owners = (f.name for f in FAMILIES.values() if name.startswith(f.hf.class_prefix))
            owner = next(owners, None)
            raise CheckpointError(
                f"{source}: architectures names {name!r} but model_type is {fam.name!r}"
                + (f"; it is a {owner} checkpoint: set model_type to {owner!r}" if owner else "")
            )
        kind = next((k for k in TASK_KINDS if name == prefix + task_suffix(k)), None)
        if kind is not None:
            return kind
    return None


def architecture(fam: Family, parts: frozenset[str], kind: str | None) -> str:
    """The HF class for a module with top-level `parts` (and task `kind`)."""
    prefix = fam.hf.class_prefix
    if kind is not None:
        return prefix + task_suffix(kind)
    heads = parts - {"encoder"}
    if not heads:
        return prefix + "Model"
    if heads not in fam.hf.pretraining:
        raise CheckpointError(f"{fam.name} has no HF class with the heads {sorted(heads)}")
    return prefix + fam.hf.pretraining[heads]


def strip_layout(fam: Family, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo the encoder prefix of head models and TF-era `gamma`/`beta` LayerNorm names."""
    out = {}
    for key, tensor in raw.items():
        stem, dot, leaf = key.rpartition(".")
        out[(stem + dot + _LEGACY_LEAVES.get(leaf, leaf)).removeprefix(fam.hf.base_prefix)] = tensor
    return out


def is_ignored(fam: Family, key: str) -> bool:
    """Buffers and tied copies HF files may carry that are not parameters of ours."""
    return key.endswith(fam.hf.ignored)


def likely_family(raw: dict[str, torch.Tensor], declared: Family) -> tuple[str, str] | None:
    """(name, example key) of another family whose encoder layout these weights match,
    when the declared family's matches none of them."""
    best: tuple[int, str, str] | None = None
    for fam in FAMILIES.values():
        if fam is declared:
            continue
        state, origin, _ = keymap(fam, (), 1).to_ours(strip_layout(fam, raw), "weights")
        if state and (best is None or len(state) > best[0]):
            nested = [k for k in raw if k.startswith(fam.hf.base_prefix)]
            best = (len(state), fam.name, nested[0] if nested else next(iter(origin.values())))
    return None if best is None else best[1:]
