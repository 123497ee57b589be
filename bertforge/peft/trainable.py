"""Which parameters train: a predicate over parameter names, set once as `requires_grad`.

Names are those of `model.named_parameters()`; `is_head` (targets.py) says where the encoder
ends, `layer_norms` lists every LayerNorm parameter (adapters train them, Houlsby et al.).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def layer_norms(model: nn.Module) -> set[str]:
    """The names of every LayerNorm weight and bias in `model`."""
    return {
        f"{name}.{p}" if name else p
        for name, m in model.named_modules()
        if isinstance(m, nn.LayerNorm)
        for p, _ in m.named_parameters(recurse=False)
    }


def set_trainable(model: nn.Module, keep: Callable[[str], bool]) -> None:
    """`requires_grad` on exactly the parameters whose name `keep` accepts."""
    for name, p in model.named_parameters():
        p.requires_grad_(keep(name))


def trainable_summary(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
