"""The training step of an embedding run: one loss over the vectors of the whole global batch
(every anchor against every candidate), whatever its size, through gradient caching.

A batch of B rows of C texts (anchor, positive, hard negatives), (B, C, T), is embedded in
pieces of `chunk_size` texts sorted by length (a piece is cut to its longest text), the loss
taken over all B x C vectors. Up to `chunk_size` rows, every piece keeps its graph: one plain
backward. A larger batch trains by gradient caching (`grad_cache.py`): the pieces are
embedded without a graph but the last (the longest texts), and each is embedded again with
a graph and its cached gradient backpropagated: the update equals that of one big-batch
backward, with the activations of `chunk_size` texts in memory. Under DDP each rank embeds
its share and the vectors are gathered (with their gradient path) so every rank's loss sees
the global batch's negatives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch.nn.parallel import DistributedDataParallel

from bertforge.objectives.contrastive import EmbeddingLoss
from bertforge.objectives.loss import LossSums
from bertforge.training.distributed import all_reduce_sum, gradient_sync, world_size
from bertforge.training.grad_cache import cached_backward
from bertforge.training.runtime import autocast
from bertforge.training.step import Batch, StepStats


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """(b, ...) on each rank -> (world * b, ...) in rank order, with the gradient flowing back
    to each rank's own rows (every rank holds the same global loss)."""
    if world_size() == 1:
        return x
    return torch.cat(dist_fn.all_gather(x))


def gather_ids(x: torch.Tensor) -> torch.Tensor:
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x)
    return torch.cat(parts)


class EmbeddingStep:
    """`train_step`'s contract (micro-batches in, stats and gradient norm out) for one
    `EmbeddingLoss` over the global batch."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size

    def __call__(
        self,
        model: torch.nn.Module,
        micro_batches: list[Batch],
        optimizer: torch.optim.Optimizer,
        objectives: Sequence[EmbeddingLoss],
        *,
        precision: str,
        grad_clip: float,
    ) -> tuple[StepStats, float]:
        (objective,) = objectives
        device = next(model.parameters()).device
        batch = {k: torch.cat([b[k] for b in micro_batches]).to(device) for k in micro_batches[0]}
        # Gathering needs as many rows on every rank (a last batch may split unevenly).
        rows = equal_rows(batch["input_ids"].shape[0])
        batch = {k: v[:rows] for k, v in batch.items()}
        texts, length = batch["input_ids"].shape[1:]  # (B, C, T)
        inputs = ("input_ids", "attention_mask", "token_type_ids")
        flat = {k: batch[k].reshape(-1, length) for k in inputs}  # (B * C, T), row by row
        lengths = flat["attention_mask"].sum(-1)
        # Texts by length, shortest first, `chunk_size` to a forward, each cut to its longest:
        # short anchors are not padded to their paragraphs' length.
        order = torch.argsort(lengths, stable=True)
        pieces = order.split(self.chunk_size)
        chunks = [{k: v[idx, : max(1, int(lengths[idx].max()))] for k, v in flat.items()}
                  for idx in pieces]  # fmt: skip
        back = torch.argsort(order)  # sorted position -> row-by-row position
        targets = {k: gather_ids(v) for k, v in batch.items() if k in ("text_ids", "labels")}
        metrics: dict[str, torch.Tensor] = {}

        def embed(chunk: Batch) -> torch.Tensor:  # (n, t) -> (n, H)
            ids, mask, types = chunk["input_ids"], chunk["attention_mask"], chunk["token_type_ids"]
            with autocast(precision, device):
                return model(ids, mask, types).float()

        unwrapped = model.module if isinstance(model, DistributedDataParallel) else model
        scale = unwrapped.scale()  # a learned scale, or None

        def loss_of(vectors: list[torch.Tensor]) -> torch.Tensor:
            local = torch.cat(vectors)[back].view(rows, texts, -1)  # (B, C, H)
            loss, found = objective.loss_of(gather_rows(local), targets, scale)
            metrics.update(found)
            return loss

        def sync(last: bool) -> AbstractContextManager[Any]:
            return gradient_sync(model, sync=last)

        # A batch of up to `chunk_size` rows (at most C pieces) is one plain backward; a larger
        # one holds the graph of one piece at a time, the last (longest) never replayed.
        live = len(chunks) if rows <= self.chunk_size else 1
        loss, _ = cached_backward(embed, chunks, loss_of, device, sync, live=live)
        params = [p for p in model.parameters() if p.grad is not None]
        total = torch.nn.utils.clip_grad_norm_(params, grad_clip or math.inf)
        norm = float(total)
        if math.isfinite(norm):
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # Every rank computed the global batch's loss; the stats hold its sums over the rows.
        count = rows * world_size()
        tokens = all_reduce_sum({"tokens": int(batch["attention_mask"].sum())})["tokens"]
        stats = StepStats()
        stats.add({objective.name: LossSums(loss * count, torch.tensor(count), metrics)}, tokens)
        return stats, norm


def equal_rows(rows: int) -> int:
    """The fewest rows any rank holds."""
    if world_size() == 1:
        return rows
    least = torch.tensor([rows])
    dist.all_reduce(least, op=dist.ReduceOp.MIN)
    return int(least)
