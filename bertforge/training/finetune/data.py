"""Batching for fine-tuning: shuffled or length-grouped row order and dynamic padding."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from bertforge.constants import IGNORE_INDEX

MEGA_BATCH = 50  # length grouping sorts within windows of this many batches


def batch_order(
    lengths: Sequence[int], batch_size: int, rng: random.Random, group_by_length: bool
) -> list[list[int]]:
    """Row indices per batch for one epoch.

    With `group_by_length`, rows are shuffled, sorted by length within mega-batches of
    `MEGA_BATCH * batch_size`, cut into batches, and the batches shuffled: similar lengths
    share a batch (less padding) while the epoch order stays random.
    """
    rows = list(range(len(lengths)))
    rng.shuffle(rows)
    if group_by_length:
        mega = MEGA_BATCH * batch_size
        rows = [
            i
            for start in range(0, len(rows), mega)
            for i in sorted(rows[start : start + mega], key=lambda r: -lengths[r])
        ]
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def rank_share(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's rows of each global batch under data parallelism: every `world`-th row from
    row `rank`. A batch with fewer rows than ranks is left out (each rank must run a backward
    for DDP's gradient all-reduce); the caller reports the rows it leaves out."""
    return [b[rank::world] for b in batches if len(b) >= world]


def eval_order(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of similar length for inference (order is restored by the caller)."""
    rows = sorted(range(len(lengths)), key=lambda r: -lengths[r])
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def collate(
    features: dict[str, list[Any]],
    indices: Sequence[int],
    pad_id: int,
    extra_keys: Sequence[str] = (),
    label_dtype: torch.dtype = torch.long,
) -> dict[str, torch.Tensor]:
    """Pad the batch to its longest row: ids with `pad_id`, masks and types with 0, per-token
    labels with -100 so the loss skips them; scalar labels become one `label_dtype` tensor."""
    batch = {
        "input_ids": _pad([features["input_ids"][i] for i in indices], pad_id),
        "token_type_ids": _pad([features["token_type_ids"][i] for i in indices], 0),
        "attention_mask": _pad([features["attention_mask"][i] for i in indices], 0),
    }
    for key in extra_keys:
        values = [features[key][i] for i in indices]
        if isinstance(values[0], list):
            batch[key] = _pad(values, IGNORE_INDEX)
        else:
            batch[key] = torch.tensor(values, dtype=label_dtype)
    return batch


def iterate(
    features: dict[str, list[Any]],
    batches: list[list[int]],
    pad_id: int,
    extra_keys: Sequence[str] = (),
    label_dtype: torch.dtype = torch.long,
) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    for indices in batches:
        yield indices, collate(features, indices, pad_id, extra_keys, label_dtype)
