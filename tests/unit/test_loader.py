"""Sampler and loader: epochs, drop_last, O(1) resume, ranks, accumulation and workers."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
import torch

from bertforge.data.collate import PretrainingCollator
from bertforge.data.instances import Instance
from bertforge.data.loader import GlobalBatchSampler, PretrainingLoader
from bertforge.errors import CheckpointError, ConfigError, DataError
from bertforge.objectives import MaskingConfig, MaskingVocab

PAD, CLS, SEP, MASK = 0, 1, 2, 3
N = 50  # examples; with global batches of 8: 6 steps per epoch, 2 examples dropped


def dataset() -> list[Instance]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(N):
        a, b = rng.integers(4, 100, 3 + i % 7), rng.integers(4, 100, 2 + i % 5)
        out.append(Instance(np.array([CLS, *a, SEP, *b, SEP]), a.size + 2, b.size + 1, i % 2))
    return out


def collator() -> PretrainingCollator:
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(96)]
    vocab = MaskingVocab.from_tokens(
        tokens, special_ids=[CLS, SEP], pad_id=PAD, mask_id=MASK, scheme="wordpiece"
    )
    return PretrainingCollator(vocab, MaskingConfig(rate=0.3), seed=11)


def loader(**options: int) -> PretrainingLoader:
    return PretrainingLoader(dataset(), collator(), global_batch_size=8, seed=5, **options)


Step = list[dict[str, torch.Tensor]]


def examples(micro_batches: Step) -> list[tuple[tuple[int, ...], ...]]:
    """Per-example (ids, types, labels, nsp) without padding: comparable across batchings."""
    out = []
    for b in micro_batches:
        for row in range(b["input_ids"].shape[0]):
            n = int(b["attention_mask"][row].sum())
            keys = ("input_ids", "token_type_ids", "mlm_labels")
            cols = tuple(tuple(b[k][row, :n].tolist()) for k in keys)
            out.append((*cols, (int(b["nsp_labels"][row]),)))
    return out


def assert_same_steps(a: list[Step], b: list[Step]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        for bx, by in zip(x, y, strict=True):
            assert all(torch.equal(bx[k], by[k]) for k in bx)


def test_epochs_drop_last_and_permutations() -> None:
    sampler = GlobalBatchSampler(N, 8, seed=1)
    assert sampler.steps_per_epoch == 6
    batches = list(islice(iter(sampler), 12))
    assert [b.epoch for b in batches] == [0] * 6 + [1] * 6
    for epoch in (0, 1):
        seen = np.concatenate([b.indices for b in batches if b.epoch == epoch])
        assert seen.size == 48 and np.unique(seen).size == 48  # no repeats, 2 dropped
    assert not np.array_equal(batches[0].indices, batches[6].indices)
    assert batches[5].after.epoch == 1 and batches[5].after.position == 0
    assert sampler.state == batches[-1].after


def test_sampler_resumes_without_replay() -> None:
    reference = list(islice(GlobalBatchSampler(N, 8, seed=1), 10))
    first = GlobalBatchSampler(N, 8, seed=1)
    list(islice(iter(first), 4))
    resumed = GlobalBatchSampler(N, 8, seed=1)
    resumed.load_state_dict(first.state_dict())
    rest = list(islice(iter(resumed), 6))
    for a, b in zip(reference[4:], rest, strict=True):
        assert a.epoch == b.epoch and np.array_equal(a.indices, b.indices)


def test_sampler_state_errors() -> None:
    state = GlobalBatchSampler(N, 8, seed=1).state_dict()
    with pytest.raises(CheckpointError, match="same shards"):
        GlobalBatchSampler(N + 1, 8, seed=1).load_state_dict(state)
    with pytest.raises(ConfigError, match="seed"):
        GlobalBatchSampler(N, 8, seed=2).load_state_dict(state)
    with pytest.raises(DataError, match="fewer than one global batch"):
        GlobalBatchSampler(5, 8)
    with pytest.raises(ConfigError, match="divisible"):
        loader(world_size=3)


def test_loader_resume_mid_epoch_across_the_boundary() -> None:
    reference = list(islice(loader(), 9))
    first = loader()
    list(islice(iter(first), 4))
    state = first.state_dict()
    assert (state["epoch"], state["position"]) == (0, 32)
    resumed = loader()
    resumed.load_state_dict(state)
    assert_same_steps(reference[4:], list(islice(iter(resumed), 5)))
    assert resumed.epoch == 1


def test_global_batch_is_the_same_for_any_world_size_and_accumulation() -> None:
    reference = [examples(step) for step in islice(loader(), 7)]
    accumulated = list(islice(loader(accumulation_steps=4), 7))
    assert all(len(step) == 4 for step in accumulated)
    assert [examples(step) for step in accumulated] == reference
    ranks = [list(islice(loader(rank=r, world_size=2, accumulation_steps=2), 7)) for r in range(2)]
    assert [examples(r0 + r1) for r0, r1 in zip(*ranks, strict=True)] == reference


def test_workers_give_the_same_batches() -> None:
    assert_same_steps(
        list(islice(loader(accumulation_steps=2), 3)),
        list(islice(loader(accumulation_steps=2, num_workers=2), 3)),
    )
