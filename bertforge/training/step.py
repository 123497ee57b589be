"""One optimisation step over a global batch split into micro-batches, and evaluation."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from bertforge.heads import PreTrainingModel
from bertforge.objectives import (
    LossSums,
    masked_targets,
    mlm_loss,
    nsp_loss,
    target_counts,
    total_loss,
)
from bertforge.training.distributed import all_reduce_sum, gradient_sync, world_size
from bertforge.training.runtime import autocast

Batch = dict[str, torch.Tensor]


@dataclass
class StepStats:
    """Sums over one global batch; `rates()` turns them into the logged means."""

    mlm_loss: float = 0.0
    mlm_correct: int = 0
    mlm_count: int = 0
    nsp_loss: float = 0.0
    nsp_correct: int = 0
    nsp_count: int = 0
    tokens: int = 0

    def add(self, parts: dict[str, LossSums], tokens: int) -> None:
        self.tokens += tokens
        for name, s in parts.items():
            setattr(self, f"{name}_loss", getattr(self, f"{name}_loss") + float(s.loss.detach()))
            setattr(self, f"{name}_correct", getattr(self, f"{name}_correct") + int(s.correct))
            setattr(self, f"{name}_count", getattr(self, f"{name}_count") + int(s.count))

    def rates(self, nsp_weight: float) -> dict[str, float]:
        out = {
            "mlm_loss": self.mlm_loss / max(self.mlm_count, 1),
            "mlm_acc": self.mlm_correct / max(self.mlm_count, 1),
        }
        out["loss"] = out["mlm_loss"]
        if self.nsp_count:
            out["nsp_loss"] = self.nsp_loss / self.nsp_count
            out["nsp_acc"] = self.nsp_correct / self.nsp_count
            out["loss"] += nsp_weight * out["nsp_loss"]
        return out


def forward(
    model: PreTrainingModel | torch.nn.Module, batch: Batch, precision: str
) -> tuple[dict[str, LossSums], int]:
    """Losses of one micro-batch as sums; the vocab projection sees masked positions only."""
    device = next(model.parameters()).device
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    positions, targets = masked_targets(batch["mlm_labels"])  # (B, T) bool, (M,)
    with autocast(precision, device):
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], positions)
    parts = {"mlm": mlm_loss(out.mlm_logits, targets)}
    if out.nsp_logits is not None:
        parts["nsp"] = nsp_loss(out.nsp_logits, batch["nsp_labels"])
    return parts, int(batch["attention_mask"].sum())


def train_step(
    model: PreTrainingModel | torch.nn.Module,
    micro_batches: list[Batch],
    optimizer: torch.optim.Optimizer,
    *,
    precision: str,
    grad_clip: float,
    nsp_weight: float,
) -> tuple[StepStats, float]:
    """Accumulate gradients over the micro-batches, each loss normalised by the *global*
    number of targets, so the update equals that of one big batch. Returns the stats and the
    gradient norm; a non-finite norm means the optimizer was not stepped.

    Under DDP (`model` wrapped by `distributed.wrap_model`) the counts and the returned stats
    are summed over ranks, so they describe the global batch on every rank, and the norm is
    the same on every rank because it is taken after DDP's gradient all-reduce."""
    counts = all_reduce_sum(target_counts(micro_batches))
    weights = {"mlm": 1.0, "nsp": nsp_weight}
    # DDP averages gradients over ranks; the loss is normalised by global counts, so scaling by
    # the world size turns that average back into the sum over the global batch.
    scale = world_size()
    stats = StepStats()
    for i, batch in enumerate(micro_batches):
        with gradient_sync(model, sync=i == len(micro_batches) - 1):
            parts, tokens = forward(model, batch, precision)
            loss = total_loss(parts, counts, weights)
            (loss * scale if scale > 1 else loss).backward()
        stats.add(parts, tokens)
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    if math.isfinite(norm):
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return StepStats(**all_reduce_sum(dataclasses.asdict(stats))), norm


@torch.no_grad()
def evaluate(
    model: PreTrainingModel, batches: list[list[Batch]], precision: str, nsp_weight: float
) -> dict[str, float]:
    """MLM loss/accuracy (and NSP) over fixed held-out batches."""
    was_training = model.training
    model.eval()
    stats = StepStats()
    for micro_batches in batches:
        for batch in micro_batches:
            stats.add(*forward(model, batch, precision))
    model.train(was_training)
    return stats.rates(nsp_weight)
