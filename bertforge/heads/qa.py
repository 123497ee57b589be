"""Extractive question answering: Linear(H, 2) on every token gives span start/end logits
(HF `BertForQuestionAnswering`: no pooler, no dropout)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.interop.hf.pretrained import HFPretrained
from bertforge.interop.hf.task import TaskMeta
from bertforge.models.encoder import Encoder
from bertforge.models.init import init_weights


class QuestionAnswering(HFPretrained, nn.Module):
    """(B, T) tokens -> (start_logits, end_logits), each (B, T)."""

    hf_head = "question_answering"
    fresh_ok = ("qa.",)

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, add_pooler=False)
        self.qa = nn.Linear(config.hidden_size, 2)
        init_weights(self.qa, config.initializer_range)

    @classmethod
    def from_parts(
        cls, config: EncoderConfig, parts: set[str], task: TaskMeta
    ) -> QuestionAnswering:
        return cls(config)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> QuestionAnswering:
        """Encoder from any BERT checkpoint; `qa` too when it is a QA checkpoint."""
        return super().from_pretrained(path)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
    ) -> tuple[torch.Tensor, torch.Tensor]:  # (B, T), (B, T)
        hidden = self.encoder(input_ids, attention_mask, token_type_ids).last_hidden_state
        start, end = self.qa(hidden).unbind(dim=-1)
        return start, end
