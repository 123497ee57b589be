"""The step core shared by pretraining and fine-tuning: one optimisation step over a global
batch split into micro-batches, for any list of objectives, and evaluation with the same
bookkeeping."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bertforge.objectives import LossSums, Objective, count_targets, total_loss
from bertforge.training.distributed import all_reduce_sum, gradient_sync, world_size
from bertforge.training.runtime import autocast

Batch = dict[str, torch.Tensor]


@dataclass
class StepStats:
    """Sums over one global batch, per objective; `rates()` turns them into logged means."""

    sums: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> loss/count/...
    tokens: int = 0

    def add(self, parts: dict[str, LossSums], tokens: int) -> None:
        self.tokens += tokens
        for name, s in parts.items():
            acc = self.sums.setdefault(name, {})
            values = {"loss": float(s.loss.detach()), "count": int(s.count)}
            values |= {k: int(v) for k, v in s.metrics.items()}
            for key, value in values.items():
                acc[key] = acc.get(key, 0) + value

    def reduced(self) -> StepStats:
        """The same sums added over every rank (a no-op in one process)."""
        flat = {f"{n}.{k}": v for n, acc in self.sums.items() for k, v in acc.items()}
        flat = all_reduce_sum({**flat, "tokens": self.tokens})
        out = StepStats(tokens=flat.pop("tokens"))
        for key, value in flat.items():
            name, _, metric = key.partition(".")
            out.sums.setdefault(name, {})[metric] = value
        return out

    def rates(self, objectives: Sequence[Objective]) -> dict[str, float]:
        """{name}_loss and {name}_{metric} means over labelled items, and `loss`: the
        weighted sum of the objective means that were present."""
        out: dict[str, float] = {"loss": 0.0}
        for o in objectives:
            acc = dict(self.sums.get(o.name, {}))
            if not acc.get("count"):
                continue
            # An objective may turn some sums into ratios of its own (precision, recall).
            derived = o.rates(acc) if hasattr(o, "rates") else {}
            for key, value in acc.items():
                if key != "count":
                    out[f"{o.name}_{key}"] = value / acc["count"]
            out |= {f"{o.name}_{key}": value for key, value in derived.items()}
            out["loss"] += o.weight * out[f"{o.name}_loss"]
        return out


def forward(
    model: torch.nn.Module, batch: Batch, objectives: Sequence[Objective], precision: str
) -> tuple[dict[str, LossSums], int]:
    """Loss sums of one micro-batch and its real-token count. The model gets the batch's
    input_ids / attention_mask / token_type_ids and whatever inputs the objectives add."""
    device = next(model.parameters()).device
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    # Packed documents that attend only to themselves (`[data] documents = "separate"`).
    extra: dict[str, Any] = {k: batch[k] for k in ("document_ids",) if k in batch}
    for o in objectives:
        extra |= o.inputs(batch)
    with autocast(precision, device):
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], **extra)
    parts = {o.name: o.loss(out, batch) for o in objectives}
    return parts, int(batch["attention_mask"].sum())


def train_step(
    model: torch.nn.Module,
    micro_batches: list[Batch],
    optimizer: torch.optim.Optimizer,
    objectives: Sequence[Objective],
    *,
    precision: str,
    grad_clip: float,
) -> tuple[StepStats, float]:
    """Accumulate gradients over the micro-batches, each loss normalised by the *global*
    number of targets, so the update equals that of one big batch. Returns the stats and the
    gradient norm; a non-finite norm means the optimizer was not stepped.

    Under DDP (`model` wrapped by `distributed.wrap_model`) the counts and the returned stats
    are summed over ranks, so they describe the global batch on every rank, and the norm is
    the same on every rank because it is taken after DDP's gradient all-reduce."""
    counts = all_reduce_sum(count_targets(objectives, micro_batches))
    weights = {o.name: o.weight for o in objectives}
    # DDP averages gradients over ranks; the loss is normalised by global counts, so scaling by
    # the world size turns that average back into the sum over the global batch.
    scale = world_size()
    stats = StepStats()
    for i, batch in enumerate(micro_batches):
        with gradient_sync(model, sync=i == len(micro_batches) - 1):
            parts, tokens = forward(model, batch, objectives, precision)
            loss = total_loss(parts, counts, weights)
            (loss * scale if scale > 1 else loss).backward()
        stats.add(parts, tokens)
    params = [p for p in model.parameters() if p.grad is not None]
    # grad_clip 0: no clipping (RoBERTa's recipe), the norm is still measured and checked.
    total = torch.nn.utils.clip_grad_norm_(params, grad_clip or math.inf)
    # Under FSDP the norm is a DTensor over the ranks' shards: its full value is the global one.
    norm = float(total.full_tensor() if hasattr(total, "full_tensor") else total)
    if math.isfinite(norm):
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return stats.reduced(), norm


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: list[list[Batch]],
    objectives: Sequence[Objective],
    precision: str,
) -> dict[str, float]:
    """The objectives' losses and metrics over fixed held-out batches, in eval mode."""
    was_training = model.training
    model.eval()
    stats = StepStats()
    for micro_batches in batches:
        for batch in micro_batches:
            stats.add(*forward(model, batch, objectives, precision))
    model.train(was_training)
    return stats.rates(objectives)
