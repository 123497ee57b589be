"""Batching for fine-tuning: shuffled or length-grouped row order, dynamic padding, and the
resumable stream of global batches the trainer steps through.

A feature row is a token list, or for multiple choice a list of token lists (one per
choice): both pad to the batch's longest row, (B, T) or (B, C, T).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

from bertforge.constants import IGNORE_INDEX

if TYPE_CHECKING:
    from bertforge.finetuning.frozen import EncoderCache

logger = logging.getLogger(__name__)

MEGA_BATCH = 50  # length grouping sorts within windows of this many batches


def row_lengths(features: dict[str, list[Any]]) -> list[int]:
    """Tokens in each row (the longest choice of a multiple-choice row)."""
    return [
        max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)
        for ids in features["input_ids"]
    ]


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


def eval_order(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of similar length for inference (order is restored by the caller)."""
    rows = sorted(range(len(lengths)), key=lambda r: -lengths[r])
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def _pad(rows: list[Any], value: int) -> torch.Tensor:
    if rows and isinstance(rows[0][0], list):  # (B, C, T): every row has C choices
        width = max(len(r) for row in rows for r in row)
        padded = [[r + [value] * (width - len(r)) for r in row] for row in rows]
        return torch.tensor(padded, dtype=torch.long)
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


class EpochBatches:
    """A fine-tuning run's global batches, epoch after epoch, as the trainer takes them: each
    a one-micro-batch list holding this rank's rows (every `world`-th row of the global batch
    from row `rank`; a global batch with fewer rows than ranks is left out, since every rank
    must run a backward for DDP's all-reduce).

    The epoch's order is drawn from one `random.Random(seed)` shared by every rank, so the
    position (epoch, batch) is the whole state: a resume redraws the earlier epochs' orders,
    which reads no data. With a frozen-encoder `cache`, it selects the batch's cached rows.
    """

    def __init__(
        self,
        features: dict[str, list[Any]],
        batch_size: int,
        seed: int,
        group_by_length: bool,
        pad_id: int,
        extra_keys: Sequence[str],
        label_dtype: torch.dtype,
        *,
        rank: int = 0,
        world: int = 1,
        cache: EncoderCache | None = None,
    ) -> None:
        self.features, self.lengths = features, row_lengths(features)
        self.batch_size, self.seed, self.group_by_length = batch_size, seed, group_by_length
        self.pad_id, self.extra_keys, self.label_dtype = pad_id, extra_keys, label_dtype
        self.rank, self.world, self.cache = rank, world, cache
        self.epoch, self.position = 0, 0

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size)
        return full + (rest >= self.world)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _order(self, rng: random.Random) -> list[list[int]]:
        order = batch_order(self.lengths, self.batch_size, rng, self.group_by_length)
        return [b for b in order if len(b) >= self.world]

    def __iter__(self) -> Iterator[list[dict[str, torch.Tensor]]]:
        rng = random.Random(self.seed)
        for _ in range(self.epoch):  # the orders of the epochs already trained
            self._order(rng)
        while True:
            order = self._order(rng)
            if self.position == 0 and self.rank == 0:
                left_out = len(self.lengths) - sum(len(b) for b in order)
                if left_out:
                    logger.warning(
                        "epoch %d: the last batch's %d row(s) left out: fewer than %d ranks",
                        self.epoch + 1, left_out, self.world,
                    )  # fmt: skip
            while self.position < len(order):
                indices = order[self.position][self.rank :: self.world]
                self.position += 1
                if self.cache is not None:
                    self.cache.select("train", indices)
                batch = collate(
                    self.features, indices, self.pad_id, self.extra_keys, self.label_dtype
                )
                yield [batch]
            self.epoch, self.position = self.epoch + 1, 0
