"""Feature extraction (`--strategy frozen`): the encoder runs once per example, its outputs are
cached, and every epoch trains only the task head on the cache.

The cache stands in for the head's `encoder` attribute, so the heads and the loop run
unchanged: the loop tells it which rows the next batch holds (`select`). Classification caches
the [CLS] state per example (H floats; the pooler, part of the head, runs on it live); NER the
per-token states. SQuAD windows would need 384 x H floats each, so SQuAD trains with the
frozen encoder in the loop instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from bertforge.finetuning.batches import eval_order, iterate, row_lengths
from bertforge.models.encoder import EncoderOutput

logger = logging.getLogger(__name__)


class EncoderCache(nn.Module):
    """Replays cached encoder outputs for the rows chosen with `select`."""

    def __init__(self, encoder: nn.Module, pooled: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooled = pooled
        self.store: dict[str, list[torch.Tensor]] = {}
        self._rows: tuple[str, Sequence[int]] | None = None

    @torch.no_grad()
    def fill(
        self,
        split: str,
        features: dict[str, list],
        pad_id: int,
        batch_size: int,
        device: torch.device,
    ) -> None:
        """Run the encoder (eval mode: no dropout, as a fixed feature extractor) over a split."""
        lengths = row_lengths(features)
        rows: list[torch.Tensor | None] = [None] * len(lengths)
        self.encoder.eval()
        for indices, batch in iterate(features, eval_order(lengths, batch_size), pad_id):
            batch = {k: v.to(device) for k, v in batch.items()}
            out = self.encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            for j, i in enumerate(indices):
                hidden = out.last_hidden_state[j, : lengths[i]]
                # A copy: a view would keep the whole (B, T, H) batch alive in the cache.
                rows[i] = (hidden[0] if self.pooled else hidden).clone()
        self.store[split] = [r for r in rows if r is not None]
        logger.info("cached encoder outputs of %d %s rows", len(self.store[split]), split)

    def select(self, split: str, rows: Sequence[int]) -> None:
        self._rows = (split, rows)

    def forward(self, *args: object, **kwargs: object) -> EncoderOutput:
        if self._rows is None:
            raise RuntimeError("EncoderCache.select must be called before each forward")
        split, rows = self._rows
        cached = [self.store[split][i] for i in rows]
        if self.pooled:
            cls = torch.stack(cached)[:, None]  # (B, 1, H)
            # The pooler counts as head (it is fresh when a checkpoint lacks it), so it trains;
            # families whose head reads the first token itself have none.
            pooler = self.encoder.pooler
            return EncoderOutput(cls, pooler_output=pooler(cls) if pooler is not None else None)
        # Padding positions are zeros; their labels are -100, so they never reach the loss.
        padded = nn.utils.rnn.pad_sequence(cached, batch_first=True)
        return EncoderOutput(last_hidden_state=padded)


def install(model: nn.Module, cached: str | None) -> EncoderCache | None:
    """Swap `model.encoder` for a cache of the first token's ("first") or every token's
    ("tokens") states, as the task kind says; None: the task runs the encoder live."""
    if cached is None:
        return None
    cache = EncoderCache(model.encoder, pooled=cached == "first")
    model.encoder = cache
    return cache


@contextlib.contextmanager
def real_encoder(model: nn.Module, cache: EncoderCache | None) -> Iterator[None]:
    """The real encoder in place for the block (to save a whole model), the cache after."""
    if cache is None:
        yield
        return
    model.encoder = cache.encoder
    try:
        yield
    finally:
        model.encoder = cache
