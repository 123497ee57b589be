"""Gradient caching (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup"): a contrastive loss over a batch far larger than the activations that
fit in memory, with the gradient of the plain big batch.

1. Embed the batch chunk by chunk without a graph (activation memory of one chunk), keeping
   each chunk's random state.
2. Compute the loss over all embeddings, which are leaves here: its backward stops at them,
   leaving d loss / d embedding of every row (small: rows x hidden).
3. Embed each chunk again with a graph, under the random state it had in 1 (so dropout
   draws the same masks), and backpropagate the cached gradient into the weights.

A cached row runs twice forward and once backward: about 1.33x the work of one pass, for
memory that no longer grows with the batch. The last chunks keep their graph through the
loss (as many as memory allows), so they are embedded once.
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
    live: int = 1,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Backpropagate `loss_of(embeddings of every chunk)` into the weights `embed` uses (and
    any parameter of the loss, e.g. a learned scale). The last `live` chunks keep their
    graph through the loss (no second forward; all of them: a plain backward); the others
    are cached and replayed. `sync(last)`: a context under which a backward syncs gradients
    only when `last` (DDP's `no_sync` before the last one). Returns the loss and the
    embeddings (detached)."""
    live = min(max(live, 1), len(chunks))
    early, late = chunks[: len(chunks) - live], chunks[len(chunks) - live :]
    states, cached = [], []
    for chunk in early:
        states.append(RandomState(device))
        with torch.no_grad():
            cached.append(embed(chunk).detach().requires_grad_())

    def syncing(last: bool) -> AbstractContextManager[Any]:
        return sync(last) if sync is not None else nullcontext()

    kept = []
    for j, chunk in enumerate(late):  # DDP decides at a forward whether its backward syncs
        with syncing(not early and j == len(late) - 1):
            kept.append(embed(chunk))
    after = RandomState(device)  # where a plain pass would have left the generators
    with syncing(not early):
        loss = loss_of([*cached, *kept])
        loss.backward()
    for i, (chunk, state, leaf) in enumerate(zip(early, states, cached, strict=True)):
        state.restore()
        with syncing(i == len(early) - 1):
            embed(chunk).backward(leaf.grad)
    after.restore()
    return loss.detach(), [e.detach() for e in (*cached, *kept)]
