"""A sentence-embedding model: (B, T) tokens -> (B, H) vectors, an encoder and a pooling
(the first token's state or the mean of the real tokens', L2-normalised or not).

It saves as the family's HF `...Model` with the sentence-transformers modules beside it
(`interop/sentence_transformers.py`), so `SentenceTransformer(path)` loads it and pools the
same way, and it loads any checkpoint of the family, with the pooling the checkpoint's own
modules declare unless one is given.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.interop.sentence_transformers import Pooling, read_pooling
from bertforge.interop.sentence_transformers import write_sentence_transformers as write_st
from bertforge.models.encoder import Encoder
from bertforge.pretrained import Pretrained, TaskMeta

EMBEDDING = "embedding"  # the task head kind of embedding tasks


def pool(
    hidden: torch.Tensor,  # (B, T, H)
    mask: torch.Tensor,  # (B, T) 1 = token
    mode: str,
) -> torch.Tensor:  # (B, H)
    """The first token's state, or the mean over real tokens only (never padding)."""
    if mode == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class EmbeddingModel(Pretrained, nn.Module):
    """`encoder` -> pooling -> (optionally) L2 normalisation."""

    kind = None  # saved as the bare encoder class: the pooling is in the ST modules
    fresh_ok = ("encoder.pooler.", "log_scale")

    def __init__(
        self,
        config: EncoderConfig,
        pooling: Pooling,
        pooler: bool = False,
        learned_scale: float | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.pooling = pooling
        # A checkpoint's pooler (MiniLM has one) is carried, unused, so the save keeps it.
        self.encoder = Encoder(config, add_pooler=pooler)
        # Contrastive training may learn its similarity scale (CLIP's logit scale): a weight
        # of the run (optimised, checkpointed), not of the exported model.
        self.log_scale = (
            nn.Parameter(torch.tensor(math.log(learned_scale))) if learned_scale else None
        )

    @classmethod
    def from_checkpoint(
        cls, config: EncoderConfig, parts: set[str], meta: TaskMeta, **options: Any
    ) -> Self:
        scale = options.get("learned_scale")
        return cls(config, options["pooling"], pooler="pooler" in parts, learned_scale=scale)

    def scale(self) -> torch.Tensor | None:
        """The learned similarity scale, capped at 100 as CLIP caps it; None when fixed."""
        return None if self.log_scale is None else self.log_scale.exp().clamp(max=100.0)

    def saved_state(self) -> dict[str, Any]:
        return {k: v for k, v in self.state_dict().items() if k != "log_scale"}

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        pooling: Pooling | None = None,
        *,
        mode: str | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        **options: Any,
    ) -> Self:
        """`pooling` None: the checkpoint's sentence-transformers pooling, else mean; `mode`,
        `normalize` and `max_length` override parts of it."""
        pooling = (pooling or read_pooling(path) or Pooling()).override(mode, normalize, max_length)
        return super().from_pretrained(path, pooling=pooling, **options)

    def save_pretrained(self, path: str | Path) -> None:
        super().save_pretrained(path)
        write_st(path, self.pooling, self.config.hidden_size)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
    ) -> torch.Tensor:  # (B, H)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids, attention_mask, token_type_ids).last_hidden_state
        vectors = pool(hidden, attention_mask, self.pooling.mode)
        return F.normalize(vectors, dim=-1) if self.pooling.normalize else vectors
