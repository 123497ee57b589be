"""Gradient caching (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup"): a contrastive loss over a batch far larger than the activations that
fit in memory, with the gradient of the plain big batch.

1. Embed the batch chunk by chunk without a graph (activation memory of one chunk), keeping
   each chunk's random state.
2. Compute the loss over all embeddings, which are leaves here: its backward stops at them,
   leaving d loss / d embedding of every row (small: rows x hidden).
3. Embed each chunk again with a graph, under the random state it had in 1 (so dropout
   draws the same masks), and backpropagate the cached gradient into the weights.

The encoder runs twice forward and once backward per row: about 1.33x the work of one pass,
for memory that no longer grows with the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

Chunk = Any  # whatever `embed` takes: a micro-batch of tokenized texts


class RandomState:
    """The CPU (and current CUDA device's) generator state, to replay a forward's dropout."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.device = device

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def cached_backward(
    embed: Callable[[Chunk], torch.Tensor],  # chunk -> (n, H)
    chunks: Sequence[Chunk],
    loss_of: Callable[[list[torch.Tensor]], torch.Tensor],  # chunk embeddings -> () loss
    device: torch.device,
    sync: Callable[[bool], AbstractContextManager[Any]] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Backpropagate `loss_of(embeddings of every chunk)` into the weights `embed` uses (and
    any parameter of the loss, e.g. a learned scale). `sync(last)`: a context under which
    a backward syncs gradients only when `last` (DDP's `no_sync` before the last chunk).
    Returns the loss and the embeddings (detached)."""
    states, cached = [], []
    for chunk in chunks:
        states.append(RandomState(device))
        with torch.no_grad():
            cached.append(embed(chunk).detach())
    leaves = [e.requires_grad_() for e in cached]
    with sync(False) if sync is not None else nullcontext():
        loss = loss_of(leaves)
        loss.backward()
    after = RandomState(device)  # where a plain pass would have left the generators
    for i, (chunk, state, leaf) in enumerate(zip(chunks, states, leaves, strict=True)):
        state.restore()
        last = i == len(chunks) - 1
        with sync(last) if sync is not None else nullcontext():
            embed(chunk).backward(leaf.grad)
    after.restore()
    return loss.detach(), [leaf.detach() for leaf in leaves]
