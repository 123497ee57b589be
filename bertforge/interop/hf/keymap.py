"""Table-driven renaming between our parameter names and a Hugging Face layout.

A rule pairs one of our names with one HF name, or with several HF tensors that we store fused
(e.g. query/key/value -> one `qkv`), concatenated along dim 0 in the listed order. Templates use
`{i}` for a layer index and `{p}` for `weight`/`bias`; an HF name may instead use `{g}` and
`{j}` (group, layer within the group) for shared blocks, with `i = g * inner + j`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from bertforge.errors import CheckpointError

_FIELDS = {
    "i": r"(?P<i>\d+)",
    "g": r"(?P<g>\d+)",
    "j": r"(?P<j>\d+)",
    "p": r"(?P<p>weight|bias)",
}


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name, group in _FIELDS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), group)
    return re.compile(pattern + "$")


@dataclass(frozen=True)
class Rule:
    ours: str
    hf: tuple[str, ...]


def _ours_fields(groups: dict[str, str], inner: int) -> dict[str, str]:
    """HF template fields -> ours: a (group, layer-in-group) pair is one block index."""
    if "g" in groups:
        return {**groups, "i": str(int(groups["g"]) * inner + int(groups["j"]))}
    return groups


def _hf_fields(groups: dict[str, str], inner: int) -> dict[str, str]:
    if "i" not in groups:
        return groups
    g, j = divmod(int(groups["i"]), inner)
    return {**groups, "g": str(g), "j": str(j)}


class KeyMap:
    """Renames whole state dicts in both directions; unknown keys are returned, not dropped.
    `inner` is the number of blocks per shared group (1 without sharing)."""

    def __init__(self, rules: Iterable[tuple[str, str | tuple[str, ...]]], inner: int = 1) -> None:
        self.rules = [Rule(o, (h,) if isinstance(h, str) else h) for o, h in rules]
        self.inner = inner
        self._ours = [(_compile(r.ours), r) for r in self.rules]
        self._hf = [(_compile(h), r, slot) for r in self.rules for slot, h in enumerate(r.hf)]

    def to_ours(
        self, hf_state: dict[str, torch.Tensor], source: str
    ) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
        """HF -> ours. Returns (state, origin: ours key -> HF key, unmatched HF keys)."""
        pieces: dict[str, dict[int, tuple[str, torch.Tensor]]] = {}
        rules: dict[str, Rule] = {}
        unmatched = []
        for key, tensor in hf_state.items():
            for pattern, rule, slot in self._hf:
                m = pattern.match(key)
                if m:
                    ours = rule.ours.format(**_ours_fields(m.groupdict(), self.inner))
                    pieces.setdefault(ours, {})[slot] = (key, tensor)
                    rules[ours] = rule
                    break
            else:
                unmatched.append(key)
        state, origin = {}, {}
        for ours, parts in pieces.items():
            rule = rules[ours]
            if len(parts) != len(rule.hf):
                have = sorted(k for k, _ in parts.values())
                raise CheckpointError(
                    f"{source}: found {', '.join(have)} but not all of the "
                    f"{len(rule.hf)} tensors that make up one weight; the file is incomplete"
                )
            names = [parts[s][0] for s in range(len(rule.hf))]
            tensors = [parts[s][1] for s in range(len(rule.hf))]
            state[ours] = tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=0)
            origin[ours] = names[0] if len(names) == 1 else "+".join(names)
        return state, origin, unmatched

    def to_hf(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Ours -> HF. Every key must have a rule: saving must never drop weights silently."""
        out = {}
        for key, tensor in state.items():
            for pattern, rule in self._ours:
                m = pattern.match(key)
                if m:
                    fields = _hf_fields(m.groupdict(), self.inner)
                    names = [h.format(**fields) for h in rule.hf]
                    if len(names) == 1:  # no copy: saving a big model must not double it
                        out[names[0]] = tensor.detach().contiguous()
                        break
                    # Clone the chunks: safetensors refuses tensors that share storage.
                    chunks = tensor.chunk(len(names), dim=0)
                    for name, chunk in zip(names, chunks, strict=True):
                        out[name] = chunk.detach().clone().contiguous()
                    break
            else:
                raise CheckpointError(f"no Hugging Face name is known for parameter '{key}'")
        return out
