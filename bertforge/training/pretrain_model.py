"""Which model a pretraining run trains, and how it is exported, from its objectives.

- MLM (+ NSP/SOP, + SBO): one `PreTrainingModel`, exported as the family's
  `...ForPreTraining` / `...ForMaskedLM`.
- RTD: `ElectraPreTraining` (generator + discriminator), exported as two HF directories,
  `discriminator/` (`ElectraForPreTraining`) and `generator/` (`ElectraForMaskedLM`).
- distill_ce / distill_cos: `Distillation` (a student built from the teacher named in the
  recipe's [distill] table), exported as the student's `...ForMaskedLM`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from bertforge.architectures import PreTrainingModel
from bertforge.architectures.distillation import Distillation, student_config
from bertforge.architectures.electra import ElectraPreTraining
from bertforge.atomic import atomic_path
from bertforge.config import EncoderConfig
from bertforge.errors import ConfigError, DataError
from bertforge.interop.hf import load_config, tokenizer_class
from bertforge.objectives import DISTILL_OBJECTIVES
from bertforge.tokenization import Tokenizer
from bertforge.training.recipe import Recipe

SBO_FILE = "sbo_head.safetensors"


def model_config(recipe: Recipe, tokenizer: Tokenizer, names: set[str]) -> EncoderConfig:
    """The trained model's config: the recipe's family and size, or for distillation the
    student cut from the teacher (whose config.json is read, not its weights)."""
    if names & DISTILL_OBJECTIVES:
        teacher = load_config(recipe.distill.checked_teacher())
        return student_config(teacher, recipe.distill.every)
    return recipe.encoder_config(tokenizer.vocab_size, tokenizer.pad_token_id)


def build_model(recipe: Recipe, tokenizer: Tokenizer, names: set[str]) -> nn.Module:
    """A freshly initialised model for a run's objectives (`names`); distillation loads the
    teacher and copies the student's layers from it."""
    if "rtd" in names:
        if recipe.family != "electra":
            raise ConfigError(
                f'[objectives] rtd trains an ELECTRA discriminator; set family = "electra" '
                f"(the recipe says {recipe.family!r})"
            )
        return ElectraPreTraining(model_config(recipe, tokenizer, names), recipe.generator.size)
    if names & DISTILL_OBJECTIVES:
        path = recipe.distill.checked_teacher()
        _check_teacher_vocab(path, tokenizer)  # before reading its weights
        return Distillation(PreTrainingModel.from_pretrained(path), recipe.distill.every)
    config = model_config(recipe, tokenizer, names)
    # A position for every offset a span can have in tokens (max_span counts words).
    sbo = config.max_length if "sbo" in names else None
    return PreTrainingModel(config, nsp="nsp" in names, sbo=sbo)


def trained_config(model: nn.Module) -> EncoderConfig:
    """The config of the model a run exports (the discriminator, the student)."""
    return exported_model(model).config


def exported_model(model: nn.Module) -> PreTrainingModel:
    if isinstance(model, ElectraPreTraining):
        return model.discriminator
    if isinstance(model, Distillation):
        return model.student
    assert isinstance(model, PreTrainingModel)
    return model


def load_trained(
    recipe: Recipe, tokenizer: Tokenizer, names: set[str], state: dict[str, torch.Tensor]
) -> nn.Module:
    """The model of a run with a checkpoint's `state` loaded. A distillation run needs only
    its student (checkpoints never hold the teacher)."""
    if names & DISTILL_OBJECTIVES:
        model = PreTrainingModel(model_config(recipe, tokenizer, names), nsp=False)
        state = {k.removeprefix("student."): v for k, v in state.items()}
    else:
        model = build_model(recipe, tokenizer, names)
    model.load_state_dict(state)
    return model


def export_model(model: nn.Module, output: Path, tokenizer: Tokenizer) -> Path:
    """Write the HF directory (or directories) of a trained model with its tokenizer."""
    if isinstance(model, ElectraPreTraining):
        for name in ("discriminator", "generator"):
            part = getattr(model, name)
            part.save_pretrained(output / name)
            tokenizer.save_pretrained(output / name, tokenizer_class(part.config, tokenizer))
        return output
    model = exported_model(model)
    if model.sbo is not None:
        # transformers has no span boundary head: the HF directory holds the encoder and its
        # MLM (+ NSP) head, and the SBO weights sit beside them in our names.
        with atomic_path(output / SBO_FILE) as tmp:
            save_file({k: v.contiguous() for k, v in model.sbo.state_dict().items()}, str(tmp))
        plain = PreTrainingModel(model.config, nsp=model.nsp is not None)
        plain.load_state_dict(
            {k: v for k, v in model.state_dict().items() if not k.startswith("sbo.")}
        )
        model = plain
    model.save_pretrained(output)
    tokenizer.save_pretrained(output, tokenizer_class(model.config, tokenizer))
    return output


def _check_teacher_vocab(teacher: Path, tokenizer: Tokenizer) -> None:
    """The student learns the teacher's distribution over the teacher's vocabulary, token by
    token: the data must be tokenized with that vocabulary."""
    try:
        theirs = Tokenizer.from_pretrained(teacher).get_vocab()
    except Exception as e:
        raise DataError(f"cannot read the teacher's tokenizer in '{teacher}' ({e})") from None
    if theirs != tokenizer.get_vocab():
        raise DataError(
            f"the teacher '{teacher}' has a vocabulary of {len(theirs)} tokens that differs from "
            f"the data's ({tokenizer.vocab_size} tokens); rebuild the data with "
            f"`bertforge build-data --tokenizer {teacher}`"
        )
