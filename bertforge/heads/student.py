"""Students for distillation (Sanh et al., 2019): half a teacher, initialised from it.

A BERT teacher gives a DistilBERT: its token and position embeddings, its embedding LayerNorm,
every other layer (0, 2, 4, ...) and its MLM head; token types and the pooler are dropped, as
DistilBERT has neither. A teacher DistilBERT cannot express (RoBERTa's offset positions,
ALBERT's shared blocks, NEZHA's relative positions, factorized embeddings) gives a student of
its own family with every other layer instead (DistilRoBERTa is a 6-layer RoBERTa).
"""

from __future__ import annotations

import torch

from bertforge.config import EncoderConfig
from bertforge.errors import ConfigError
from bertforge.heads.pretraining import PreTrainingModel


def _distilbert_can_express(config: EncoderConfig) -> bool:
    return (
        config.position == "absolute"
        and config.position_offset == 0
        and config.embedding_size is None
        and config.num_blocks == config.num_hidden_layers
        and config.layer_norm_eps == 1e-12  # DistilBERT builds its LayerNorms so
    )


def student_config(teacher: EncoderConfig, every: int = 2) -> EncoderConfig:
    """The teacher's shape with every `every`-th layer (DistilBERT when it can hold it)."""
    if teacher.num_blocks != teacher.num_hidden_layers:
        raise ConfigError(
            f"a teacher with shared layers ({teacher.num_blocks} blocks for "
            f"{teacher.num_hidden_layers} layers) has no layers to pick for a student"
        )
    layers = len(range(0, teacher.num_hidden_layers, every))
    if _distilbert_can_express(teacher):
        return teacher.replace(model_type="distilbert", num_hidden_layers=layers, type_vocab_size=0)
    return teacher.replace(num_hidden_layers=layers)


def student_from_teacher(teacher: PreTrainingModel, every: int = 2) -> PreTrainingModel:
    """A student MLM holding copies of the teacher's embeddings, layers 0, `every`, ... and
    MLM head (the teacher is left untouched)."""
    if teacher.mlm is None:
        raise ConfigError("the teacher has no MLM head; distil from a ...ForMaskedLM model")
    config = student_config(teacher.config, every)
    student = PreTrainingModel(config, nsp=False)
    picked = range(0, teacher.config.num_hidden_layers, every)
    source, target = teacher.encoder, student.encoder
    with torch.no_grad():
        for name in ("tokens", "positions", "norm", "project"):
            part = getattr(target.embeddings, name)
            if part is not None:
                part.load_state_dict(getattr(source.embeddings, name).state_dict())
        if target.embeddings.segments is not None:
            target.embeddings.segments.load_state_dict(source.embeddings.segments.state_dict())
        for i, j in enumerate(picked):
            target.layers[i].load_state_dict(source.layers[source.order[j]].state_dict())
        student.mlm.load_state_dict(teacher.mlm.state_dict())
    return student
