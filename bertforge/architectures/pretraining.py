"""Encoder + pretraining heads. Returns logits; losses live in `bertforge.objectives`.

The heads present decide what it is in HF terms: MLM alone is `...ForMaskedLM` (ELECTRA's
generator too), MLM + NSP/SOP is `...ForPreTraining`, replaced-token detection alone is
ELECTRA's discriminator (`ElectraForPreTraining`). SpanBERT's span boundary head has no HF
class: a run exports it beside the checkpoint (`training/pretrain_model.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.errors import CheckpointError, ConfigError
from bertforge.families import family
from bertforge.heads.mlm import MLMHead
from bertforge.heads.nsp import NSPHead
from bertforge.heads.rtd import RTDHead
from bertforge.heads.sbo import SBOHead
from bertforge.models.encoder import Encoder
from bertforge.models.init import init_weights
from bertforge.pretrained import Pretrained, TaskMeta


@dataclass
class PreTrainingOutput:
    last_hidden_state: torch.Tensor  # (B, T, H)
    mlm_logits: torch.Tensor | None = None  # (M, V) at M selected positions, or (B, T, V)
    nsp_logits: torch.Tensor | None = None  # (B, 2)
    rtd_logits: torch.Tensor | None = None  # (B, T): replaced-token logits
    sbo_logits: torch.Tensor | None = None  # (M, V): span boundary predictions


# Head parts a pretraining model can carry; objectives name the parts they read.
HEAD_PARTS = ("mlm", "nsp", "rtd", "sbo")


class PreTrainingModel(Pretrained, nn.Module):
    """An encoder with the head parts named in `heads`: "mlm", "nsp" (NSP/SOP), "rtd"
    (replaced-token detection), "sbo" (span boundary, with a position for every offset the
    encoder can hold)."""

    def __init__(self, config: EncoderConfig, heads: Iterable[str] = ("mlm", "nsp")) -> None:
        super().__init__()
        heads = frozenset(heads)
        unknown = sorted(heads - set(HEAD_PARTS))
        if unknown or not heads & {"mlm", "rtd"}:
            raise ConfigError(
                f"pretraining heads {sorted(heads)}: choose from {', '.join(HEAD_PARTS)}, with "
                "mlm or rtd among them"
            )
        self.config = config
        shapes = family(config.model_type).heads
        # The pooler feeds only the sentence-pair head (BertForMaskedLM has none).
        self.encoder = Encoder(config, add_pooler="nsp" in heads)
        self.mlm = MLMHead(config, shapes.mlm_activation) if "mlm" in heads else None
        self.nsp = NSPHead(config.hidden_size, shapes.pair_dropout) if "nsp" in heads else None
        self.rtd = RTDHead(config) if "rtd" in heads else None
        # A position for every offset a span can have in tokens (max_span counts words).
        self.sbo = SBOHead(config, config.max_length) if "sbo" in heads else None
        for head in (self.mlm, self.nsp, self.rtd):  # the SBO head initialises itself
            if head is not None:
                head.apply(lambda m: init_weights(m, config.initializer_range))

    @property
    def heads(self) -> frozenset[str]:
        """The head parts this model carries."""
        return frozenset(name for name in HEAD_PARTS if getattr(self, name) is not None)

    @classmethod
    def from_checkpoint(
        cls, config: EncoderConfig, parts: set[str], meta: TaskMeta
    ) -> PreTrainingModel:
        if not parts & {"mlm", "rtd"}:
            raise CheckpointError(
                "checkpoint has no MLM head (nor a replaced-token head); it is a bare encoder "
                "or a task model. Use a ...ForMaskedLM / ...ForPreTraining checkpoint, or "
                "pretrain one"
            )
        return cls(config, parts & set(HEAD_PARTS))

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
        masked_positions: torch.Tensor | None = None,  # (B, T) bool: positions to predict
        sbo_left: torch.Tensor | None = None,  # (B, T): span boundary targets (collate.py)
        sbo_right: torch.Tensor | None = None,  # (B, T)
        sbo_offset: torch.Tensor | None = None,  # (B, T)
        document_ids: torch.Tensor | None = None,  # (B, T): packed documents, 0 = padding
    ) -> PreTrainingOutput:
        out = self.encoder(input_ids, attention_mask, token_type_ids, document_ids=document_ids)
        hidden = out.last_hidden_state
        result = PreTrainingOutput(hidden)
        if self.mlm is not None:
            # Only the selected rows reach the vocabulary projection: (M, H) -> (M, V).
            picked = hidden[masked_positions] if masked_positions is not None else hidden
            result.mlm_logits = self.mlm(picked, self.encoder.embeddings.tokens.weight)
        if self.nsp is not None:
            result.nsp_logits = self.nsp(out.pooler_output)
        if self.rtd is not None:
            result.rtd_logits = self.rtd(hidden)
        if self.sbo is not None and sbo_left is not None:
            rows = masked_positions.nonzero()[:, 0]  # (M,): row-major, as the labels
            result.sbo_logits = self.sbo(
                hidden,
                sbo_left[masked_positions],
                sbo_right[masked_positions],
                sbo_offset[masked_positions],
                rows,
                self.encoder.embeddings.tokens.weight,
            )
        return result
