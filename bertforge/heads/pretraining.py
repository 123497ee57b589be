"""Encoder + pretraining heads (MLM, optionally NSP/SOP). Returns logits; losses live in
`bertforge.objectives`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.errors import CheckpointError
from bertforge.heads.mlm import MLMHead
from bertforge.heads.nsp import NSPHead
from bertforge.interop.hf.pretrained import HFPretrained
from bertforge.interop.hf.task import TaskMeta
from bertforge.models.encoder import Encoder
from bertforge.models.init import init_weights


@dataclass
class PreTrainingOutput:
    last_hidden_state: torch.Tensor  # (B, T, H)
    mlm_logits: torch.Tensor  # (M, V) for M selected positions, or (B, T, V) when none given
    nsp_logits: torch.Tensor | None = None  # (B, 2)


class PreTrainingModel(HFPretrained, nn.Module):
    """HF `BertForPreTraining` (with NSP) or `BertForMaskedLM` (without) in our composition."""

    def __init__(self, config: EncoderConfig, nsp: bool = True) -> None:
        super().__init__()
        self.config = config
        # BertForMaskedLM has no pooler: only the NSP head reads it.
        self.encoder = Encoder(config, add_pooler=nsp)
        self.mlm = MLMHead(config)
        self.nsp = NSPHead(config.hidden_size) if nsp else None
        for head in (self.mlm, self.nsp):
            if head is not None:
                head.apply(lambda m: init_weights(m, config.initializer_range))

    @classmethod
    def from_parts(cls, config: EncoderConfig, parts: set[str], task: TaskMeta) -> PreTrainingModel:
        if "mlm" not in parts:
            raise CheckpointError(
                "checkpoint has no MLM head (no cls.predictions.* weights); it is a bare "
                "encoder. Use a BertForMaskedLM/BertForPreTraining checkpoint, or pretrain one"
            )
        return cls(config, nsp="nsp" in parts)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
        masked_positions: torch.Tensor | None = None,  # (B, T) bool: positions to predict
    ) -> PreTrainingOutput:
        out = self.encoder(input_ids, attention_mask, token_type_ids)
        hidden = out.last_hidden_state
        if masked_positions is not None:
            hidden = hidden[masked_positions]  # (M, H): only these reach the vocab projection
        mlm_logits = self.mlm(hidden, self.encoder.embeddings.tokens.weight)
        nsp_logits = self.nsp(out.pooler_output) if self.nsp is not None else None
        return PreTrainingOutput(out.last_hidden_state, mlm_logits, nsp_logits)
