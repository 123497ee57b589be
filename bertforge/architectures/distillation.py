"""Students for distillation (Sanh et al., 2019): half a teacher, initialised from it.

A BERT teacher gives a DistilBERT: its token and position embeddings, its embedding LayerNorm,
every other layer (0, 2, 4, ...) and its MLM head; token types and the pooler are dropped, as
DistilBERT has neither. A teacher DistilBERT cannot express (RoBERTa's offset positions,
ALBERT's shared blocks, NEZHA's relative positions, factorized embeddings) gives a student of
its own family with every other layer instead (DistilRoBERTa is a 6-layer RoBERTa).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import torch
from torch import nn

from bertforge.architectures.pretraining import PreTrainingModel
from bertforge.config import EncoderConfig
from bertforge.errors import ConfigError
from bertforge.models.encoder import set_unpadded


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
    student = PreTrainingModel(config, heads=("mlm",))
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


@dataclass
class DistillationOutput:
    mlm_logits: torch.Tensor | None  # (M, V): the student's, at the masked positions
    student_logits: torch.Tensor | None  # (N, V) at the distillation positions
    teacher_logits: torch.Tensor | None  # (N, V) at the same positions, no graph
    student_hidden: torch.Tensor  # (R, H): last hidden states at every real token
    teacher_hidden: torch.Tensor  # (R, H)


class Distillation(nn.Module):
    """A student trained on its teacher's outputs. Only the student is a submodule: the
    teacher is frozen, runs in eval mode without gradients, and is neither optimised nor
    checkpointed (a run reloads it from its recipe)."""

    def __init__(self, teacher: PreTrainingModel, every: int = 2) -> None:
        super().__init__()
        self.student = student_from_teacher(teacher, every)
        teacher.requires_grad_(False)
        teacher.eval()
        set_unpadded(teacher)
        self._teacher = (teacher,)  # a tuple keeps it out of the module tree
        self.config = self.student.config

    @property
    def teacher(self) -> PreTrainingModel:
        return self._teacher[0]

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Self:
        # .to(device) / .bfloat16() reach the teacher too, though it is not a submodule.
        self.teacher._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        self.teacher.eval()  # dropout never touches the targets
        return self

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T); a DistilBERT student ignores them
        masked_positions: torch.Tensor | None = None,  # (B, T) bool: MLM targets
        distill_positions: torch.Tensor | None = None,  # (B, T) bool: where the KL is taken
        document_ids: torch.Tensor | None = None,  # (B, T): packed documents, 0 = padding
    ) -> DistillationOutput:
        real = attention_mask.bool()  # (B, T)
        docs = {"document_ids": document_ids}
        with torch.no_grad():
            t_hidden = self.teacher.encoder(input_ids, attention_mask, token_type_ids, **docs)
            t_hidden = t_hidden.last_hidden_state  # (B, T, H)
            t_logits = None
            if distill_positions is not None:
                t_logits = self.teacher.mlm(
                    t_hidden[distill_positions], self.teacher.encoder.embeddings.tokens.weight
                )
        student = self.student
        s_hidden = student.encoder(input_ids, attention_mask, token_type_ids, **docs)
        s_hidden = s_hidden.last_hidden_state
        decoder = student.encoder.embeddings.tokens.weight
        s_logits = mlm_logits = None
        if distill_positions is not None:
            s_logits = student.mlm(s_hidden[distill_positions], decoder)  # (N, V)
            if masked_positions is not None and not (masked_positions & ~distill_positions).any():
                # One vocabulary projection serves both losses: pick the masked rows.
                mlm_logits = s_logits[masked_positions[distill_positions]]
        if masked_positions is not None and mlm_logits is None:
            mlm_logits = student.mlm(s_hidden[masked_positions], decoder)
        return DistillationOutput(mlm_logits, s_logits, t_logits, s_hidden[real], t_hidden[real])
