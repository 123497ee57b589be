"""The held-out sample a pretraining run evaluates on, and the bar it must clear: the MLM
accuracy of always answering the most frequent training token."""

from __future__ import annotations

import numpy as np
import torch

from bertforge.constants import IGNORE_INDEX
from bertforge.data.collate import PretrainingCollator
from bertforge.data.loader import PretrainingLoader
from bertforge.data.shards import ShardedDataset
from bertforge.pretraining.recipe_tables import TrainConfig


def unigram_accuracy(
    train_set: ShardedDataset,
    collator: PretrainingCollator,
    eval_batches: list[list[dict[str, torch.Tensor]]],
) -> float | None:
    """MLM accuracy of always answering the most frequent non-special training token, on the
    held-out batches: the bar a model that ignores context clears. None without MLM or eval."""
    labels = [b["mlm_labels"] for group in eval_batches for b in group if "mlm_labels" in b]
    if not labels:
        return None
    vocab = collator.vocab
    counts = np.zeros(vocab.vocab_size, dtype=np.int64)
    for tokens in train_set.token_arrays():
        counts += np.bincount(tokens, minlength=vocab.vocab_size)
    counts[vocab.is_special] = 0
    top = int(counts.argmax())
    targets = torch.cat([x[x != IGNORE_INDEX] for x in labels])
    return float((targets == top).float().mean()) if targets.numel() else None


def heldout_batches(
    eval_set: ShardedDataset, collator: PretrainingCollator, cfg: TrainConfig
) -> list[list[dict[str, torch.Tensor]]]:
    """A fixed held-out sample: the same batches (and masks) at every evaluation."""
    loader = PretrainingLoader(
        eval_set,
        collator,
        global_batch_size=min(cfg.batch_size, len(eval_set)),
        seed=cfg.seed,
        accumulation_steps=1,
    )
    it = iter(loader)
    return [next(it) for _ in range(min(cfg.eval_batches, loader.steps_per_epoch))]
