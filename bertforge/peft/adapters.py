"""Bottleneck adapters (Houlsby et al., 2019): after the attention output and the FFN output
projections of every block, y -> y + up(act(down(y))), inserted by wrapping those linears so
the blocks need no change. Near-zero weights make the adapted model start as the base model."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from bertforge.activations import ACTIVATIONS
from bertforge.errors import CheckpointError
from bertforge.peft.targets import replace_linears

# Houlsby's near-identity initialisation: small enough that the residual dominates.
INIT_STD = 1e-3


class Adapter(nn.Module):
    """(..., H) -> (..., H) through an m-dimensional bottleneck."""

    def __init__(self, hidden_size: int, size: int, act: str = "gelu") -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, size)
        self.act = ACTIVATIONS[act]
        self.up = nn.Linear(size, hidden_size)
        for lin in (self.down, self.up):
            nn.init.normal_(lin.weight, std=INIT_STD)
            nn.init.zeros_(lin.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(y)))


class AdaptedLinear(nn.Module):
    """lin(x) followed by an adapter on its output, with a skip connection."""

    def __init__(self, base: nn.Linear, size: int, act: str) -> None:
        super().__init__()
        self.base = base
        self.adapter = Adapter(base.out_features, size, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        return y + self.adapter(y)


def apply_adapters(
    model: nn.Module,
    size: int = 64,
    act: str = "gelu",
    targets: tuple[str, ...] = ("attn.out", "ffn.down"),
) -> nn.Module:
    """Insert an adapter after each `targets` linear of every block, in place; returns `model`.
    `size` is the bottleneck m (Houlsby et al. use 8-256)."""
    replace_linears(model, tuple(targets), lambda lin: AdaptedLinear(lin, size, act))
    return model


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters' own weights (the rest of an adapter run saves as a plain checkpoint)."""
    return {k: v.contiguous() for k, v in model.state_dict().items() if ".adapter." in k}


def without_adapters(model: nn.Module) -> nn.Module:
    """A copy with every adapted linear replaced by its base linear (the HF layout has no
    place for adapters)."""
    model = copy.deepcopy(model)
    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, AdaptedLinear)]
    for name, module in wrapped:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module.base)
    return model


def load_adapters(model: nn.Module, path: Path) -> nn.Module:
    """Insert adapters into `model` (loaded from the run's plain checkpoint) and load their
    weights from `path` (`adapter_state_dict`'s file). Returns `model`."""
    if not path.is_file():
        raise CheckpointError(f"'{path.parent}' lacks {path.name}; the adapter run is incomplete")
    apply_adapters(model)
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    adapter_missing = [k for k in missing if ".adapter." in k]
    if adapter_missing or unexpected:
        bad = (adapter_missing or unexpected)[0]
        raise CheckpointError(f"'{path}' does not fit the model (first mismatch: {bad!r})")
    return model
