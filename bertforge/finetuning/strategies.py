"""Fine-tuning strategies as objects: which parameters train, what wraps the model, how the
result is saved and loaded back, and the default peak learning rate.

    full      everything                                     3e-5
    frozen    the task head (the encoder a fixed, cached     1e-3
              feature extractor)
    adapter   bottleneck adapters + LayerNorms + head        1e-3   (Houlsby et al., 2019)
    lora      low-rank updates of attention + head           5e-4   (Hu et al., 2021)
    prompt    the whole MLM, classifying by a verbalizer     3e-5   (LM-BFF, Gao et al., 2021)
              word at a template's mask

Full fine-tuning's rates are the BERT paper's range (2e-5..5e-5); a head alone, adapters and
LoRA train few fresh parameters and want far larger steps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import nn

from bertforge import peft
from bertforge.architectures import TASK_MODELS, PreTrainingModel
from bertforge.architectures.embedding import EMBEDDING, EmbeddingModel
from bertforge.errors import ConfigError
from bertforge.peft.prompt import MASK
from bertforge.tasks import Option, Task, TaskSetup
from bertforge.tasks.formats import Example
from bertforge.tokenization import Tokenizer

LORA_DIR = "lora"
ADAPTERS_FILE = "adapters.safetensors"


class Strategy:
    """Full fine-tuning; the other strategies change what differs."""

    name = "full"
    lr = 3e-5
    options: tuple[Option, ...] = ()
    caches = False  # whether the encoder's outputs are computed once and cached

    def applies_to(self, task: Task) -> bool:
        """Whether the strategy can train this task (its options are offered only then)."""
        return True

    def resolve(self, task: Task, setup: TaskSetup, options: dict[str, Any]) -> dict[str, Any]:
        """Check the strategy fits the task; the settings to keep in task.json."""
        return {}

    def build(
        self, task: Task, setup: TaskSetup, model_dir: Path, tokenizer: Tokenizer
    ) -> nn.Module:
        """The task model: the checkpoint's encoder (and its head when it has this kind of
        head, e.g. a finished run's best/), else a fresh head."""
        model = EmbeddingModel if task.head == EMBEDDING else TASK_MODELS[task.head]
        return model.from_pretrained(model_dir, **task.model_options(setup))

    def wrap(self, model: nn.Module) -> None:
        """Insert the modules the strategy trains (in place)."""

    def keep(self, model: nn.Module) -> Callable[[str], bool]:
        """Which parameter names train."""
        return lambda name: True

    def prepare(self, model: nn.Module) -> dict[str, Any]:
        """Wrap, set `requires_grad`, and return the parameter counts for the report."""
        self.wrap(model)
        peft.set_trainable(model, self.keep(model))
        trainable, total = peft.trainable_summary(model)
        return {
            "trainable_params": trainable,
            "total_params": total,
            "trainable_pct": round(100 * trainable / max(1, total), 3),
        }

    def examples(self, setup: TaskSetup, tokenizer: Tokenizer, examples: list[Any]) -> list[Any]:
        """The examples as the model reads them."""
        return examples

    def save(self, model: nn.Module, directory: Path) -> None:
        """An HF checkpoint in `directory` that `transformers` opens as a plain model."""
        model.save_pretrained(directory)

    def load(self, model: nn.Module, directory: Path) -> nn.Module:
        """Re-attach what `save` kept outside the HF checkpoint to `model`, loaded from it."""
        return model


def _head(model: nn.Module) -> Callable[[str], bool]:
    prefix = peft.encoder_prefix(model)
    return lambda name: peft.is_head(name, prefix)


def _require(model: nn.Module, wrapper: type, strategy: str, fix: str) -> None:
    if not any(isinstance(m, wrapper) for m in model.modules()):
        raise ConfigError(f"strategy {strategy!r}: the model has no {strategy} layers; call {fix}")


class Frozen(Strategy):
    name = "frozen"
    lr = 1e-3
    caches = True

    def keep(self, model: nn.Module) -> Callable[[str], bool]:
        return _head(model)

    def resolve(self, task: Task, setup: TaskSetup, options: dict[str, Any]) -> dict[str, Any]:
        if task.head == EMBEDDING:
            raise ConfigError(
                "--strategy frozen trains a head on a fixed encoder; an embedding model has no "
                "head: use full, lora or adapter"
            )
        return {}


class Adapters(Strategy):
    """The base weights (with their tuned LayerNorms and head) save as the checkpoint, the
    adapters beside it in `adapters.safetensors`."""

    name = "adapter"
    lr = 1e-3

    def wrap(self, model: nn.Module) -> None:
        peft.apply_adapters(model)

    def keep(self, model: nn.Module) -> Callable[[str], bool]:
        _require(model, peft.AdaptedLinear, self.name, "apply_adapters")
        head, norms = _head(model), peft.layer_norms(model)
        return lambda name: ".adapter." in name or name in norms or head(name)

    def save(self, model: nn.Module, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        save_file(peft.adapter_state_dict(model), str(directory / ADAPTERS_FILE))
        peft.without_adapters(model).save_pretrained(directory)

    def load(self, model: nn.Module, directory: Path) -> nn.Module:
        return peft.load_adapters(model, directory / ADAPTERS_FILE)


class LoRA(Strategy):
    """The adapter alone saves in `lora/` (small, to share) and the merged weights as the
    checkpoint, so inference and `transformers` see a plain model."""

    name = "lora"
    lr = 5e-4

    def wrap(self, model: nn.Module) -> None:
        peft.apply_lora(model)

    def keep(self, model: nn.Module) -> Callable[[str], bool]:
        _require(model, peft.LoRALinear, self.name, "apply_lora")
        head = _head(model)
        return lambda name: peft.is_lora_parameter(name) or head(name)

    def save(self, model: nn.Module, directory: Path) -> None:
        peft.save_lora(model, directory / LORA_DIR)
        peft.merge_lora(copy.deepcopy(model)).save_pretrained(directory)


# Gao et al. (2021)'s words for SST-2; other tasks must name theirs.
DEFAULT_VERBALIZERS = {"sst2": {"0": "terrible", "1": "great"}}
DEFAULT_TEMPLATE = "{text} It was [MASK]."


class Prompt(Strategy):
    """Classification as filling the template's mask: the checkpoint's encoder and MLM head,
    scored by one verbalizer word per label. The MLM saves as the checkpoint, the template and
    verbalizer in task.json."""

    name = "prompt"
    lr = 3e-5
    options = (
        Option("template", None, "Prompt: default '{text} It was [MASK].'"),
        Option("verbalizer", None, "Prompt: LABEL=WORD,... for every label."),
    )

    def applies_to(self, task: Task) -> bool:
        return task.head == "sequence_classification"

    def resolve(self, task: Task, setup: TaskSetup, options: dict[str, Any]) -> dict[str, Any]:
        """The template and the verbalizer in label order (logit column i is label i)."""
        if not self.applies_to(task) or setup.labels is None:
            raise ConfigError("--strategy prompt works for classification only; use full or lora")
        verbalizer = options.get("verbalizer")
        if verbalizer:
            pairs = [item.split("=", 1) for item in verbalizer.split(",") if item.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ConfigError(
                    f"--verbalizer {verbalizer!r}: write label=word pairs with commas"
                )
            words = {label.strip(): word.strip() for label, word in pairs}
        elif task.name in DEFAULT_VERBALIZERS:
            words = DEFAULT_VERBALIZERS[task.name]
        else:
            raise ConfigError("--strategy prompt needs --verbalizer LABEL=WORD,... for every label")
        labels = setup.labels
        missing = [label for label in labels if label not in words]
        if missing or len(words) != len(labels):
            raise ConfigError(
                f"--verbalizer must name exactly the labels {labels} (missing {missing})"
            )
        template = options.get("template") or DEFAULT_TEMPLATE
        return {"template": template, "verbalizer": {k: words[k] for k in labels}}

    def build(
        self, task: Task, setup: TaskSetup, model_dir: Path, tokenizer: Tokenizer
    ) -> nn.Module:
        """A checkpoint without an MLM head fails here with a CheckpointError saying so."""
        mlm = PreTrainingModel.from_pretrained(model_dir)
        o = setup.strategy_options
        return peft.PromptClassifier(mlm, tokenizer, o["template"], o["verbalizer"])

    def examples(self, setup: TaskSetup, tokenizer: Tokenizer, examples: list[Any]) -> list[Any]:
        """Each text placed in the template (labels unchanged)."""
        if any(e.text_b is not None for e in examples):
            raise ConfigError("--strategy prompt takes single texts; this task has text pairs")
        template = setup.strategy_options["template"].replace(MASK, tokenizer.mask_token or MASK)
        return [Example(template.format(text=e.text_a), None, e.label, e.guid) for e in examples]

    def save(self, model: nn.Module, directory: Path) -> None:
        model.mlm_model.save_pretrained(directory)


STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (Strategy(), Frozen(), Adapters(), LoRA(), Prompt())
}


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ConfigError(f"strategy {name!r} is not one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
