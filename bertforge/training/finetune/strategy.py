"""Which parameters fine-tuning trains (full, frozen encoder, adapters, LoRA) and how the
result is saved."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from bertforge import peft
from bertforge.errors import CheckpointError, ConfigError

STRATEGIES = ("full", "frozen", "adapter", "lora", "prompt")
LORA_DIR = "lora"
ADAPTERS_FILE = "adapters.safetensors"


def check_strategy(strategy: str, kind: str) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == "prompt" and kind != "classification":
        raise ConfigError("--strategy prompt works for classification only; use full or lora")


def apply_strategy(model: nn.Module, strategy: str) -> dict[str, Any]:
    """Insert adapter/LoRA modules where the strategy needs them, set `requires_grad`, and
    return the parameter counts for the run's report."""
    if strategy == "lora":
        peft.apply_lora(model)
    elif strategy == "adapter":
        peft.apply_adapters(model)
    peft.mark_trainable(model, strategy)
    trainable, total = peft.trainable_summary(model)
    return {
        "trainable_params": trainable,
        "total_params": total,
        "trainable_pct": round(100 * trainable / max(1, total), 3),
    }


def _strip_adapters(model: nn.Module) -> nn.Module:
    """A copy with every adapted linear replaced by its base linear (the HF layout has no
    place for adapters)."""
    model = copy.deepcopy(model)
    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, peft.AdaptedLinear)]
    for name, module in wrapped:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module.base)
    return model


def save_model(model: nn.Module, strategy: str, directory: Path) -> None:
    """An HF checkpoint in `directory`.

    LoRA runs also keep the adapter on its own (`lora/`, small, to share) and save the merged
    weights as the checkpoint, so inference and `transformers` see a plain model. Adapter runs
    save the base weights (with their tuned LayerNorms and head) as the checkpoint and the
    adapters in `adapters.safetensors`; `load_model` puts them back together.
    """
    if strategy == "lora":
        peft.save_lora(model, directory / LORA_DIR)
        model = peft.merge_lora(copy.deepcopy(model))
    elif strategy == "adapter":
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in model.state_dict().items() if ".adapter." in k}
        save_file(state, str(directory / ADAPTERS_FILE))
        model = _strip_adapters(model)
    elif strategy == "prompt":
        # The prompt classifier is the MLM model plus a template; task.json keeps the template.
        model = model.mlm_model
    model.save_pretrained(directory)


def load_model(model: nn.Module, strategy: str, directory: Path) -> nn.Module:
    """Re-attach what `save_model` kept outside the HF checkpoint (adapters) to `model`, which
    was loaded from that checkpoint."""
    if strategy != "adapter":
        return model
    path = directory / ADAPTERS_FILE
    if not path.is_file():
        raise CheckpointError(f"'{directory}' lacks {ADAPTERS_FILE}; the adapter run is incomplete")
    peft.apply_adapters(model)
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    adapter_missing = [k for k in missing if ".adapter." in k]
    if adapter_missing or unexpected:
        bad = (adapter_missing or unexpected)[0]
        raise CheckpointError(f"'{path}' does not fit the model (first mismatch: {bad!r})")
    return model
