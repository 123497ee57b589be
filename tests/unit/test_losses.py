"""MLM/NSP loss sums: masked vs dense logits, ignored labels, and accumulation equivalence."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from bertforge import FAMILIES, PreTrainingModel
from bertforge.architectures.electra import sample_tokens
from bertforge.data.collate import PretrainingCollator
from bertforge.data.instances import Instance
from bertforge.data.loader import PretrainingLoader
from bertforge.objectives import (
    LossSums,
    MaskedLM,
    MaskingConfig,
    MaskingVocab,
    SentencePair,
    count_targets,
    masked_targets,
    mlm_loss,
    nsp_loss,
    total_loss,
)

OBJECTIVES = [MaskedLM(), SentencePair()]

PAD, CLS, SEP, MASK = 0, 1, 2, 3
VOCAB = 64


def test_mlm_loss_masked_equals_dense() -> None:
    logits = torch.randn(2, 5, VOCAB)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 3], labels[1, 4] = 7, 9, 11
    positions, targets = masked_targets(labels)
    masked = mlm_loss(logits[positions], targets)
    dense = mlm_loss(logits, labels)
    assert_close(masked.loss, dense.loss)
    assert int(masked.count) == 3 and int(dense.metrics["acc"]) == int(masked.metrics["acc"])
    assert_close(masked.loss / 3, F.cross_entropy(logits[positions], targets))


def test_nsp_loss_skips_missing_labels() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    sums = nsp_loss(logits, torch.tensor([0, -1, 1]))
    expected = F.cross_entropy(logits[[0, 2]], torch.tensor([0, 1]), reduction="sum")
    assert_close(sums.loss, expected)
    assert (int(sums.metrics["acc"]), int(sums.count)) == (1, 2)


def test_total_loss_weights_and_empty_objectives() -> None:
    one = torch.tensor(1)
    sums = {
        "mlm": LossSums(torch.tensor(6.0), one),
        "nsp": LossSums(torch.tensor(0.0), one),
    }
    assert_close(total_loss(sums, {"mlm": 3, "nsp": 0}), torch.tensor(2.0))
    sums["nsp"] = LossSums(torch.tensor(4.0), one)
    loss = total_loss(sums, {"mlm": 3, "nsp": 2}, weights={"nsp": 0.5})
    assert_close(loss, torch.tensor(3.0))


def loader(accumulation_steps: int) -> PretrainingLoader:
    rng = np.random.default_rng(0)
    data = []
    for i in range(32):
        a, b = rng.integers(4, VOCAB, 3 + i % 9), rng.integers(4, VOCAB, 2 + i % 4)
        label = -1 if i % 5 == 0 else i % 2  # some examples without an NSP label
        data.append(Instance(np.array([CLS, *a, SEP, *b, SEP]), a.size + 2, b.size + 1, label))
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 4)]
    vocab = MaskingVocab.from_tokens(
        tokens, special_ids=[CLS, SEP], pad_id=PAD, mask_id=MASK, scheme="wordpiece"
    )
    collate = PretrainingCollator(vocab, MaskingConfig(rate=0.3), seed=0)
    return PretrainingLoader(
        data, collate, global_batch_size=16, accumulation_steps=accumulation_steps
    )


def accumulate(model: PreTrainingModel, micro_batches: list[dict[str, torch.Tensor]]) -> float:
    """The training loop's pattern: global counts first, then sum / global count per micro."""
    model.zero_grad()
    counts = count_targets(OBJECTIVES, micro_batches)
    total = 0.0
    for b in micro_batches:
        positions, _ = masked_targets(b["mlm_labels"])
        out = model(b["input_ids"], b["attention_mask"], b["token_type_ids"], positions)
        sums = {o.name: o.loss(out, b) for o in OBJECTIVES}
        loss = total_loss(sums, counts)
        loss.backward()
        total += float(loss.detach())
    return total


def test_accumulation_equals_one_big_batch() -> None:
    config = FAMILIES["bert"].config("tiny", vocab_size=VOCAB, max_position_embeddings=32)
    model = PreTrainingModel(config).eval()  # no dropout: the two passes must agree
    whole = next(iter(loader(1)))
    split = next(iter(loader(4)))
    assert len(whole) == 1 and len(split) == 4
    assert count_targets(OBJECTIVES, whole) == count_targets(OBJECTIVES, split)
    loss_whole = accumulate(model, whole)
    grads_whole = [p.grad.clone() for p in model.parameters()]
    loss_split = accumulate(model, split)
    assert_close(torch.tensor(loss_split), torch.tensor(loss_whole))
    for p, g in zip(model.parameters(), grads_whole, strict=True):
        assert_close(p.grad, g)


def test_sampled_tokens_follow_the_softmax() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0], [5.0, 0.0, 0.0, 0.0]]).repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    draws = sample_tokens(logits, torch.rand(40000, generator=g)).view(20000, 2)
    for row in range(2):
        freq = torch.bincount(draws[:, row], minlength=4).float() / 20000
        assert_close(freq, logits[row].softmax(-1), atol=0.01, rtol=0.0)
    assert sample_tokens(torch.tensor([[0.0, float("-inf")]])).item() == 0
    # The draw picks the token: below 1/3 the first of three equal ones, above 2/3 the last.
    flat = torch.zeros(2, 3)
    assert sample_tokens(flat, torch.tensor([0.3, 0.7])).tolist() == [0, 2]
