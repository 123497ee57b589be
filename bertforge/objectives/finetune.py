"""Fine-tuning losses, one per task head, with Hugging Face's semantics (mean over labelled
items), so a run here and a `transformers` run report the same numbers.

One deliberate difference: a batch with no labelled item (every token -100, every answer out
of the window) gives a zero loss instead of PyTorch's NaN, which would poison the weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertforge.errors import ConfigError
from bertforge.objectives.masking import IGNORE_INDEX


def _mean_ce(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Cross-entropy of (N, C) logits against (N,) labels, averaged over non-ignored items."""
    total = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="sum")
    return total / (labels != ignore_index).sum().clamp(min=1)


def classification_loss(
    logits: torch.Tensor,  # (B, C)
    labels: torch.Tensor,  # (B,) class ids, or (B,) / (B, C) float targets for regression
    problem: str = "single_label",
) -> torch.Tensor:  # () float32
    """Cross-entropy for "single_label", mean squared error for "regression" (as HF)."""
    if problem == "regression":
        if logits.shape[-1] == 1:
            return F.mse_loss(logits.float().squeeze(-1), labels.float().view(-1))
        return F.mse_loss(logits.float(), labels.float())
    if problem == "single_label":
        return _mean_ce(logits, labels.view(-1), IGNORE_INDEX)
    raise ConfigError(f"unknown problem {problem!r}; choose single_label or regression")


def token_classification_loss(
    logits: torch.Tensor,  # (B, T, C)
    labels: torch.Tensor,  # (B, T); -100 at padding, specials and word continuations
) -> torch.Tensor:  # () float32
    return _mean_ce(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), IGNORE_INDEX)


def qa_loss(
    start_logits: torch.Tensor,  # (B, T)
    end_logits: torch.Tensor,  # (B, T)
    start_positions: torch.Tensor,  # (B,)
    end_positions: torch.Tensor,  # (B,)
) -> torch.Tensor:  # () float32
    """Mean of the start and end cross-entropies. As in HF, positions are clamped to [0, T] and
    T (an answer outside this window of a long document) is ignored."""
    T = start_logits.shape[1]
    starts = start_positions.view(-1).clamp(0, T)
    ends = end_positions.view(-1).clamp(0, T)
    return (_mean_ce(start_logits, starts, T) + _mean_ce(end_logits, ends, T)) / 2


def multiple_choice_loss(
    logits: torch.Tensor,  # (B, C)
    labels: torch.Tensor,  # (B,) index of the right choice
) -> torch.Tensor:  # () float32
    return _mean_ce(logits, labels.view(-1), IGNORE_INDEX)
