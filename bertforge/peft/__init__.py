"""Parameter-efficient fine-tuning: LoRA, bottleneck adapters, prompts through the MLM head,
and the strategy switch that decides which parameters train."""

from bertforge.peft.adapters import AdaptedLinear, Adapter, apply_adapters
from bertforge.peft.lora import (
    LoRAConfig,
    LoRALinear,
    apply_lora,
    load_lora,
    lora_state_dict,
    merge_lora,
    save_lora,
)
from bertforge.peft.prompt import PromptClassifier
from bertforge.peft.trainable import STRATEGIES, mark_trainable, trainable_summary

__all__ = [
    "STRATEGIES",
    "AdaptedLinear",
    "Adapter",
    "LoRAConfig",
    "LoRALinear",
    "PromptClassifier",
    "apply_adapters",
    "apply_lora",
    "load_lora",
    "lora_state_dict",
    "mark_trainable",
    "merge_lora",
    "save_lora",
    "trainable_summary",
]
