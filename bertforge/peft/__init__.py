"""Parameter-efficient fine-tuning: LoRA, bottleneck adapters, prompts through the MLM head,
and the helpers that say which parameters train (the strategies that use them are
`bertforge.finetuning.strategies`)."""

from bertforge.peft.adapters import (
    AdaptedLinear,
    Adapter,
    adapter_state_dict,
    apply_adapters,
    load_adapters,
    without_adapters,
)
from bertforge.peft.lora import (
    LoRAConfig,
    LoRALinear,
    apply_lora,
    is_lora_parameter,
    load_lora,
    lora_state_dict,
    merge_lora,
    save_lora,
)
from bertforge.peft.prompt import PromptClassifier
from bertforge.peft.targets import encoder_prefix, is_head
from bertforge.peft.trainable import layer_norms, set_trainable, trainable_summary

__all__ = [
    "AdaptedLinear",
    "Adapter",
    "LoRAConfig",
    "LoRALinear",
    "PromptClassifier",
    "adapter_state_dict",
    "apply_adapters",
    "apply_lora",
    "encoder_prefix",
    "is_head",
    "is_lora_parameter",
    "layer_norms",
    "load_adapters",
    "load_lora",
    "lora_state_dict",
    "merge_lora",
    "save_lora",
    "set_trainable",
    "trainable_summary",
    "without_adapters",
]
