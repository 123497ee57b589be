"""The model a pretraining run trains, chosen by the head parts its objectives read, and how
it is exported.

- "teacher" (distill_ce, distill_cos): `Distillation`, a student cut from the teacher named in
  the recipe's [distill] table; exported as the student's `...ForMaskedLM`.
- "rtd": `ElectraPreTraining` (the run's MLM is the generator's); exported as two HF
  directories, `discriminator/` (`ElectraForPreTraining`; for a family without such a class,
  e.g. DeBERTa-v3, its `...Model` with the RTD head beside it as `rtd_head.safetensors`, and
  under GDES the delta folded into the token table) and `generator/` (`...ForMaskedLM`).
- otherwise one `PreTrainingModel` with those heads (mlm, nsp, sbo), exported as the family's
  `...ForPreTraining` / `...ForMaskedLM`, with SpanBERT's SBO head beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from bertforge.architectures import Distillation, ElectraPreTraining, PreTrainingModel
from bertforge.architectures.distillation import student_config
from bertforge.architectures.electra import generator_config
from bertforge.atomic import atomic_path
from bertforge.config import EncoderConfig
from bertforge.errors import CheckpointError, ConfigError, DataError
from bertforge.families import family
from bertforge.interop.hf import load_config, tokenizer_class
from bertforge.interop.hf.config import config_to_hf
from bertforge.pretraining.recipe import Recipe
from bertforge.tokenization import Tokenizer

SBO_FILE = "sbo_head.safetensors"
RTD_FILE = "rtd_head.safetensors"


def check_heads(recipe: Recipe, heads: frozenset[str]) -> None:
    """The recipe's family must have each head its objectives read (a student's family is
    its teacher's)."""
    if "teacher" in heads:
        return
    fam = family(recipe.family, "recipe")
    if "nsp" in heads and not fam.pair_head:
        raise ConfigError(
            f"[objectives] nsp: the {fam.name} family has no sentence-pair head; drop nsp"
        )


def model_config(recipe: Recipe, tokenizer: Tokenizer, heads: frozenset[str]) -> EncoderConfig:
    """The trained model's config: the recipe's family and size, or for distillation the
    student cut from the teacher (whose config.json is read, not its weights)."""
    if "teacher" in heads:
        teacher = load_config(recipe.distill.checked_teacher())
        return student_config(teacher, recipe.distill.every)
    return recipe.encoder_config(tokenizer.vocab_size, tokenizer.pad_token_id)


def build_model(recipe: Recipe, config: EncoderConfig, heads: Iterable[str]) -> nn.Module:
    """A freshly initialised model with `heads`; distillation loads the teacher and copies
    the student's layers from it."""
    heads = frozenset(heads)
    if "teacher" in heads:
        teacher = PreTrainingModel.from_pretrained(recipe.distill.checked_teacher())
        return Distillation(teacher, recipe.distill.every)
    if "rtd" in heads:
        g = recipe.generator
        return ElectraPreTraining(config, g.size, g.depth, g.sharing)
    return PreTrainingModel(config, heads)


def exported_model(model: nn.Module) -> PreTrainingModel:
    """The part of a trained model that is exported (the discriminator, the student)."""
    if isinstance(model, ElectraPreTraining):
        return model.discriminator
    if isinstance(model, Distillation):
        return model.student
    assert isinstance(model, PreTrainingModel)
    return model


def load_trained(
    recipe: Recipe, config: EncoderConfig, heads: Iterable[str], state: dict[str, torch.Tensor]
) -> nn.Module:
    """The model of a run with a checkpoint's `state` loaded. A distillation run needs only
    its student (checkpoints never hold the teacher)."""
    heads = frozenset(heads)
    if "teacher" in heads:
        model = PreTrainingModel(config, heads=("mlm",))
        state = {k.removeprefix("student."): v for k, v in state.items()}
    else:
        model = build_model(recipe, config, heads)
    model.load_state_dict(state)
    return model


def export_model(model: nn.Module, output: Path, tokenizer: Tokenizer) -> Path:
    """Write the HF directory (or directories) of a trained model with its tokenizer."""
    if isinstance(model, ElectraPreTraining):
        parts = {"discriminator": model.folded_discriminator(), "generator": model.generator}
        for name, part in parts.items():
            if name == "discriminator" and not has_rtd_class(part.config):
                save_head_beside(part.rtd, output / name / RTD_FILE)
                part.encoder.save_pretrained(output / name)  # the family's `...Model`
            else:
                part.save_pretrained(output / name)
            tokenizer.save_pretrained(output / name, tokenizer_class(part.config, tokenizer))
        return output
    model = exported_model(model)
    if model.sbo is not None:
        # transformers has no span boundary head: the HF directory holds the encoder and its
        # MLM (+ NSP) head, and the SBO weights sit beside them in our names.
        save_head_beside(model.sbo, output / SBO_FILE)
        plain = PreTrainingModel(model.config, model.heads - {"sbo"})
        plain.load_state_dict(
            {k: v for k, v in model.state_dict().items() if not k.startswith("sbo.")}
        )
        model = plain
    model.save_pretrained(output)
    tokenizer.save_pretrained(output, tokenizer_class(model.config, tokenizer))
    return output


def check_generator(recipe: Recipe, config: EncoderConfig, heads: frozenset[str]) -> None:
    """Replaced-token detection's generator must be a model its family's format can write: a
    narrower generator reads the shared embeddings through an E -> H map that only ALBERT's
    and ELECTRA's formats have."""
    if "rtd" not in heads:
        return
    g = recipe.generator
    generator = generator_config(config, g.size, g.depth)
    try:
        config_to_hf(family(config.model_type), generator, "generator")
    except CheckpointError as e:
        raise ConfigError(
            f"[generator] size = {g.size}: {e}. Set size = 1.0 (as wide as the discriminator) "
            "or use a family with factorized embeddings (electra)"
        ) from None


def has_rtd_class(config: EncoderConfig) -> bool:
    """Whether the family has an HF class for an encoder with a replaced-token head."""
    return any("rtd" in parts for parts in family(config.model_type).hf.pretraining)


def save_head_beside(head: nn.Module, path: Path) -> None:
    """A head transformers has no class for, in our names, beside the HF files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(tmp))


def check_teacher_vocab(teacher: Path, tokenizer: Tokenizer) -> None:
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
