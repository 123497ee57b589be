"""LoRA (Hu et al., 2021): W x + (alpha / r) B A x with W frozen, A (r x in) and B (out x r)
trained. B starts at zero, so the wrapped model starts exactly as the base model."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from bertforge.atomic import atomic_path, write_text
from bertforge.errors import CheckpointError, ConfigError
from bertforge.peft.targets import encoder_prefix, is_head, replace_linears

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class LoRAConfig:
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("attn.qkv", "attn.out")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"LoRA needs r >= 1, alpha > 0 and 0 <= dropout < 1; got r={self.r}, "
                f"alpha={self.alpha}, dropout={self.dropout}"
            )


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, config: LoRAConfig) -> None:
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.scale = config.alpha / config.r
        self.lora_a = nn.Parameter(base.weight.new_empty(config.r, base.in_features))
        self.lora_b = nn.Parameter(base.weight.new_zeros(base.out_features, config.r))
        # The reference implementation's init for A (kaiming-uniform as nn.Linear's default).
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        update = F.linear(F.linear(self.dropout(x), self.lora_a), self.lora_b)
        return self.base(x) + self.scale * update

    def merged(self) -> nn.Linear:
        """The plain linear with W + scale * B A (after which LoRA costs nothing at inference)."""
        with torch.no_grad():
            self.base.weight += self.scale * (self.lora_b @ self.lora_a)
        return self.base


def apply_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    targets: tuple[str, ...] = ("attn.qkv", "attn.out"),
) -> nn.Module:
    """Wrap the `targets` linears of every block in place; returns `model`. The config is kept
    on `model.lora_config` for `save_lora`."""
    config = LoRAConfig(r, alpha, dropout, tuple(targets))
    replace_linears(model, config.targets, lambda lin: LoRALinear(lin, config))
    model.lora_config = config
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA update into its base weight and put the plain `nn.Linear` back, so the
    model saves in the ordinary (HF) layout. In place; returns `model`."""
    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, module in wrapped:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module.merged())
    if hasattr(model, "lora_config"):
        del model.lora_config
    return model


def is_lora_parameter(name: str) -> bool:
    return name.endswith((".lora_a", ".lora_b"))


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a LoRA run learned: the LoRA matrices and the task head (see `targets.is_head`)."""
    prefix = encoder_prefix(model)
    return {
        name: p.detach()
        for name, p in model.named_parameters()
        if is_lora_parameter(name) or is_head(name, prefix)
    }


def save_lora(model: nn.Module, directory: str | Path) -> None:
    """Write `adapter_model.safetensors` and `adapter_config.json` (our parameter names)."""
    config = getattr(model, "lora_config", None)
    if config is None:
        raise ConfigError("the model has no LoRA layers; call apply_lora first")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    # Clone: safetensors refuses tensors that share storage (e.g. tied weights).
    state = {k: v.clone().contiguous() for k, v in lora_state_dict(model).items()}
    with atomic_path(d / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    meta = {"peft_type": "LORA", **dataclasses.asdict(config)}
    write_text(d / CONFIG, json.dumps(meta, indent=2) + "\n")


def load_lora(model: nn.Module, directory: str | Path) -> nn.Module:
    """Load what `save_lora` wrote into `model` (the base model it was trained on), applying
    LoRA first when the model has none. Returns `model`."""
    d = Path(directory)
    try:
        meta = json.loads((d / CONFIG).read_text(encoding="utf-8"))
        state = load_file(d / WEIGHTS)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"'{d}' is not a LoRA adapter directory ({e})") from None
    meta.pop("peft_type", None)
    config = LoRAConfig(**{**meta, "targets": tuple(meta["targets"])})
    if getattr(model, "lora_config", None) is None:
        apply_lora(model, **dataclasses.asdict(config))
    elif model.lora_config != config:
        raise ConfigError(f"the model's LoRA {model.lora_config} differs from {d}'s {config}")
    params = dict(model.named_parameters())
    for key, tensor in state.items():
        if key not in params:
            raise CheckpointError(f"'{d / WEIGHTS}' has '{key}', which this model lacks")
        if params[key].shape != tensor.shape:
            raise CheckpointError(
                f"'{d / WEIGHTS}': '{key}' has shape {tuple(tensor.shape)}, the model "
                f"{tuple(params[key].shape)}; the adapter was trained for another model"
            )
        with torch.no_grad():
            params[key].copy_(tensor)
    return model
