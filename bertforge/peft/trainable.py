"""Which parameters a fine-tuning strategy trains, and how many that is."""

from __future__ import annotations

from torch import nn

from bertforge.errors import ConfigError
from bertforge.peft.adapters import AdaptedLinear
from bertforge.peft.lora import LoRALinear
from bertforge.peft.targets import encoder_prefix, is_head

STRATEGIES = ("full", "frozen", "adapter", "lora", "prompt")


def mark_trainable(model: nn.Module, strategy: str) -> None:
    """Set `requires_grad` for `strategy`:

    - full / prompt: everything (LM-BFF fine-tunes the whole MLM for prompts);
    - frozen: the head only (the encoder as a fixed feature extractor);
    - lora: LoRA matrices + head (Hu et al.);
    - adapter: adapters + every LayerNorm + head (Houlsby et al.).
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    prefix = encoder_prefix(model)
    needs = {"lora": (LoRALinear, "apply_lora"), "adapter": (AdaptedLinear, "apply_adapters")}
    if strategy in needs:
        wrapper, fix = needs[strategy]
        if not any(isinstance(m, wrapper) for m in model.modules()):
            raise ConfigError(f"strategy {strategy!r}: the model has no {strategy}; call {fix}")
    norms = {
        f"{name}.{p}" if name else p
        for name, m in model.named_modules()
        if isinstance(m, nn.LayerNorm)
        for p, _ in m.named_parameters(recurse=False)
    }
    for name, p in model.named_parameters():
        if strategy in ("full", "prompt") or is_head(name, prefix):
            train = True
        elif strategy == "lora":
            train = name.endswith((".lora_a", ".lora_b"))
        elif strategy == "adapter":
            train = ".adapter." in name or name in norms
        else:
            train = False
        p.requires_grad_(train)


def trainable_summary(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
