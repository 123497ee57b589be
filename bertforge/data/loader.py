"""Resumable sampling and loading of pretraining batches.

The unit of training is a *global batch* of `global_batch_size` example indices: the next slice
of the epoch's permutation, a pure function of (seed, epoch). Each rank takes a contiguous part
of it and splits that into `accumulation_steps` micro-batches, so rank r's micro-batch j holds
global examples [(r * A + j) * m, (r * A + j + 1) * m) with m = G / (world_size * A): the
global batch, and so the update, is the same whatever the world size and accumulation.

The sampler state is (seed, epoch, position): position counts the examples of the epoch's
permutation already consumed. Resuming recomputes the permutation and skips to the position,
in O(1), with nothing replayed. The last `num_examples % global_batch_size` examples of each
epoch's permutation are dropped (drop_last): a partial global batch would change the update
size. The permutation differs per epoch, so different examples are dropped each time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bertforge.data.collate import InstanceLike, PretrainingCollator, Sample
from bertforge.errors import CheckpointError, ConfigError, DataError

# A stream tag keeps the permutation's generator apart from the masking generators
# (see `bertforge.objectives.masking.MASKING_STREAM`).
PERMUTATION_STREAM = 1


class IndexedDataset(Protocol):
    """`ShardedDataset` or any list-like of instances."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> InstanceLike: ...


@dataclass(frozen=True)
class SamplerState:
    seed: int
    epoch: int = 0
    position: int = 0  # examples of this epoch's permutation already consumed


@dataclass(frozen=True)
class GlobalBatch:
    epoch: int
    indices: np.ndarray  # (G,) int64 example indices
    after: SamplerState  # the state once this batch is consumed


def epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:  # (N,) int64
    return np.random.default_rng([PERMUTATION_STREAM, seed, epoch]).permutation(num_examples)


def rank_micro_batches(
    indices: np.ndarray, rank: int, world_size: int, accumulation_steps: int
) -> list[np.ndarray]:
    """This rank's `accumulation_steps` micro-batches ((G / (world_size * A),) each) of a
    (G,) global batch: contiguous slices in rank-major order."""
    per_rank = indices.size // world_size
    return np.split(indices[rank * per_rank : (rank + 1) * per_rank], accumulation_steps)


class GlobalBatchSampler:
    """Endless global batches of example indices, epoch after epoch, from a resumable state."""

    def __init__(self, num_examples: int, global_batch_size: int, seed: int = 0) -> None:
        if global_batch_size < 1:
            raise ConfigError(f"global_batch_size {global_batch_size}; use a positive integer")
        if num_examples < global_batch_size:
            raise DataError(
                f"the dataset has {num_examples} examples, fewer than one global batch "
                f"({global_batch_size}); build more data or lower the batch size"
            )
        self.num_examples = num_examples
        self.global_batch_size = global_batch_size
        self.state = SamplerState(seed)

    @property
    def steps_per_epoch(self) -> int:
        return self.num_examples // self.global_batch_size

    def batches(self, start: SamplerState | None = None) -> Iterator[GlobalBatch]:
        """Global batches from `start` (default: the current state), without changing state."""
        seed, epoch, position = dataclasses.astuple(start or self.state)
        size = self.global_batch_size
        perm = epoch_permutation(seed, epoch, self.num_examples)
        while True:
            if position + size > self.num_examples:  # drop_last: next epoch
                epoch, position = epoch + 1, 0
                perm = epoch_permutation(seed, epoch, self.num_examples)
            indices = perm[position : position + size]
            position += size
            after = SamplerState(seed, epoch, position)
            if position + size > self.num_examples:  # report the state as "start of next epoch"
                after = SamplerState(seed, epoch + 1, 0)
            yield GlobalBatch(epoch, indices, after)

    def __iter__(self) -> Iterator[GlobalBatch]:
        """Global batches, advancing the state as each is handed over."""
        for batch in self.batches():
            self.state = batch.after
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self.state), "num_examples": self.num_examples}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["num_examples"] != self.num_examples:
            raise CheckpointError(
                f"the checkpoint's sampler saw {state['num_examples']} examples but the "
                f"dataset has {self.num_examples}; resume on the same shards"
            )
        if state["seed"] != self.state.seed:
            raise ConfigError(
                f"the checkpoint's data seed is {state['seed']} but this run uses "
                f"{self.state.seed}; resume with the checkpoint's seed"
            )
        self.state = SamplerState(state["seed"], state["epoch"], state["position"])


class _MicroBatches(Dataset[dict[str, torch.Tensor]]):
    """Maps a key (epoch, example indices) to a collated micro-batch, in a worker or not."""

    def __init__(self, dataset: IndexedDataset, collator: PretrainingCollator) -> None:
        self.dataset = dataset
        self.collator = collator

    def __getitem__(self, key: tuple[int, Sequence[int]]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        epoch, indices = key
        return self.collator([Sample(i, epoch, self.dataset[i]) for i in indices])


def _as_is(batch: Any) -> Any:
    """collate_fn for ready batches (module level: workers must pickle it)."""
    return batch


class PretrainingLoader:
    """Collated micro-batches for this rank, one list of `accumulation_steps` per global step.

    Iteration is endless (the trainer stops by steps); `state_dict()` is the sampler state after
    the last list handed over, so a checkpoint taken after a step resumes at the next one, even
    though workers may have prefetched further.
    """

    def __init__(
        self,
        dataset: IndexedDataset,
        collator: PretrainingCollator,
        *,
        global_batch_size: int,
        seed: int = 0,
        accumulation_steps: int = 1,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if global_batch_size % (world_size * accumulation_steps):
            raise ConfigError(
                f"global_batch_size {global_batch_size} is not divisible by world_size "
                f"{world_size} x accumulation_steps {accumulation_steps}"
            )
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside 0..{world_size - 1}")
        self.sampler = GlobalBatchSampler(len(dataset), global_batch_size, seed)
        self.micro = _MicroBatches(dataset, collator)
        self.accumulation_steps = accumulation_steps
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.steps_per_epoch

    @property
    def epoch(self) -> int:
        """Epoch of the next global batch."""
        return self.sampler.state.epoch

    def _keys(self, start: SamplerState) -> Iterator[tuple[int, tuple[int, ...]]]:
        for batch in self.sampler.batches(start):
            for micro in rank_micro_batches(
                batch.indices, self.rank, self.world_size, self.accumulation_steps
            ):
                yield batch.epoch, tuple(micro.tolist())

    def __iter__(self) -> Iterator[list[dict[str, torch.Tensor]]]:
        start = self.sampler.state
        loader = DataLoader(
            self.micro,
            batch_size=None,  # keys are whole micro-batches
            sampler=self._keys(start),  # type: ignore[arg-type]
            num_workers=self.num_workers,
            collate_fn=_as_is,
            pin_memory=self.pin_memory,
            # Its own generator: by default every DataLoader iterator draws a seed from the
            # global torch RNG, which would shift dropout masks after a resume.
            generator=torch.Generator().manual_seed(self.sampler.state.seed),
        )
        micro_batches = iter(loader)
        for batch in self.sampler.batches(start):
            step = [next(micro_batches) for _ in range(self.accumulation_steps)]
            self.sampler.state = batch.after  # handed over: a checkpoint now resumes after it
            yield step

    def state_dict(self) -> dict[str, int]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        if "phases" in state:
            raise CheckpointError(
                "the checkpoint was trained with a short-sequence phase and this run has "
                "none; resume with the run's own recipe (train.short_seq_len as it was)"
            )
        self.sampler.load_state_dict(state)


class PhasedLoader:
    """Global steps from one `PretrainingLoader` per phase: `steps[p]` steps from phase p,
    and the last phase runs on. Each phase keeps its own sampler state, and the state counts
    the steps handed over, so a resume lands in the right phase at the right batch."""

    def __init__(self, phases: Sequence[PretrainingLoader], steps: Sequence[int]) -> None:
        if len(steps) != len(phases) - 1:
            raise ConfigError(f"{len(phases)} phases need {len(phases) - 1} phase lengths")
        self.phases = list(phases)
        self.ends = np.cumsum(steps).tolist()  # step at which each phase but the last ends
        self.step = 0  # global steps handed over

    @property
    def phase(self) -> int:
        """Phase of the next global batch."""
        return int(np.searchsorted(self.ends, self.step, side="right"))

    def __iter__(self) -> Iterator[list[dict[str, torch.Tensor]]]:
        while True:
            phase = self.phase
            end = self.ends[phase] if phase < len(self.ends) else None
            for batches in self.phases[phase]:
                self.step += 1
                yield batches
                if self.step == end:
                    break  # its workers stop with the iterator

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "phases": [p.state_dict() for p in self.phases]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state.get("phases", ())) != len(self.phases):
            raise CheckpointError(
                f"the checkpoint's data loader had {len(state.get('phases', ())) or 1} "
                f"phase(s) and this run has {len(self.phases)}; resume with the run's own "
                "recipe (train.short_seq_len and train.short_seq_fraction as they were)"
            )
        for phase, saved in zip(self.phases, state["phases"], strict=True):
            phase.load_state_dict(saved)
        self.step = int(state["step"])
