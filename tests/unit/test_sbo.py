"""Span boundary objective: the collator's boundary targets, the head, the loss."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bertforge.config import EncoderConfig
from bertforge.data.collate import PretrainingCollator, Sample
from bertforge.data.instances import Instance
from bertforge.errors import ConfigError
from bertforge.heads.sbo import SBOHead
from bertforge.objectives import IGNORE_INDEX, MaskingConfig, MaskingVocab
from bertforge.objectives.sbo import SpanBoundaryObjective

PAD, CLS, SEP, MASK = 0, 1, 2, 3
N_WORDS = 20  # ids 4.. start words, 4 + N_WORDS.. continue them
FIELDS = ("mlm_labels", "sbo_targets")


def vocab() -> MaskingVocab:
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"w{i}" for i in range(N_WORDS)] + [f"##p{i}" for i in range(N_WORDS)]
    return MaskingVocab.from_tokens(
        tokens, special_ids=[CLS, SEP], pad_id=PAD, mask_id=MASK, scheme="wordpiece"
    )


def inst(pieces: list[int]) -> Instance:
    """[CLS] words [SEP], word j having pieces[j] pieces (a start, then continuations)."""
    ids = [CLS]
    for j, n in enumerate(pieces):
        ids += [4 + j % N_WORDS] + [4 + N_WORDS + (j + k) % N_WORDS for k in range(1, n)]
    return Instance(np.array([*ids, SEP]), len(ids) + 1, 0, -1)


SAMPLES = [
    Sample(0, 0, inst([1, 2, 1, 3, 1, 1, 2, 1, 1, 4, 1, 2, 1, 1, 1, 3, 1, 1, 2, 1])),
    Sample(1, 0, inst([2, 1, 1, 1, 3, 1, 2, 2, 1, 1, 1, 1])),
    Sample(2, 0, inst([1] * 30)),
]


def collator(**masking: object) -> PretrainingCollator:
    config = MaskingConfig(**{"mode": "span", "rate": 0.3, **masking})  # type: ignore[arg-type]
    return PretrainingCollator(vocab(), config, seed=4, fields=FIELDS)


def test_boundary_targets_match_the_masks() -> None:
    batch = collator()(SAMPLES)
    labels = batch["mlm_labels"].numpy()
    want = np.full((3, *labels.shape), IGNORE_INDEX)  # left, right, offset
    for row, line in enumerate(labels):
        # One segment, no specials inside: each run of masked tokens is one span.
        masked = np.concatenate([[False], line != IGNORE_INDEX, [False]]).astype(int)
        edges = np.flatnonzero(np.diff(masked))
        for s, stop in zip(edges[::2], edges[1::2], strict=True):
            want[0, row, s:stop], want[1, row, s:stop] = s - 1, stop
            want[2, row, s:stop] = np.arange(stop - s)
            assert line[s - 1] == line[stop] == IGNORE_INDEX  # boundaries stay visible
    got = np.stack([batch[k].numpy() for k in ("sbo_left", "sbo_right", "sbo_offset")])
    assert (got == want).all()
    assert (got[2] > 0).sum() > 5  # multi-token spans were drawn
    # The targets are a pure function of the samples, like the masks.
    assert all(torch.equal(batch[k], v) for k, v in collator()(SAMPLES).items())


def test_boundary_targets_only_when_asked() -> None:
    config = MaskingConfig(mode="span")
    assert not {"sbo_left", "sbo_right", "sbo_offset"} & set(
        PretrainingCollator(vocab(), config, seed=0)(SAMPLES)
    )


@pytest.mark.parametrize("mode", ["token", "whole_word", "ngram"])
def test_needs_span_masking(mode: str) -> None:
    with pytest.raises(ConfigError, match="span masking"):
        collator(mode=mode)


def test_needs_mlm_labels() -> None:
    with pytest.raises(ConfigError, match="mlm_labels"):
        PretrainingCollator(vocab(), MaskingConfig(mode="span"), seed=0, fields=["sbo_targets"])


@pytest.mark.parametrize(("embedding_size", "max_span"), [(None, 16), (8, 2)])
def test_head_and_loss_equal_the_formula(embedding_size: int | None, max_span: int) -> None:
    torch.manual_seed(0)
    config = EncoderConfig(
        vocab_size=vocab().vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        embedding_size=embedding_size,
    )
    batch = collator()(SAMPLES)
    head, objective = SBOHead(config, max_span), SpanBoundaryObjective()
    hidden = torch.randn(*batch["input_ids"].shape, config.hidden_size)  # (B, T, H)
    embeddings = torch.randn(config.vocab_size, config.embedding_dim)  # (V, E)
    targets = objective.inputs(batch)
    picked = batch["mlm_labels"] != IGNORE_INDEX  # (B, T): what the model selects
    rows = picked.nonzero()[:, 0]
    left, right, offset = (targets[k][picked] for k in ("sbo_left", "sbo_right", "sbo_offset"))
    logits = head(hidden, left, right, offset, rows, embeddings)
    m = int(picked.sum())
    assert logits.shape == (m, config.vocab_size) and objective.count(batch) == m
    sums = objective.loss(SimpleNamespace(sbo_logits=logits), batch)

    # SpanBERT's formula by hand; offsets past the table share its last row.
    where = head.positions.weight[offset.clamp(max=max_span - 1)]
    x = torch.cat([hidden[rows, left], hidden[rows, right], where], dim=-1)
    for dense, norm in ((head.dense1, head.norm1), (head.dense2, head.norm2)):
        x = F.gelu(x @ dense.weight.T + dense.bias)
        x = F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, config.layer_norm_eps)
    expected = x @ embeddings.T + head.bias
    labels = batch["mlm_labels"][picked]
    assert torch.allclose(logits, expected, atol=1e-5)
    assert torch.allclose(sums.loss, F.cross_entropy(expected, labels, reduction="sum"))
    assert int(sums.count) == m
    sums.loss.backward()
    assert head.positions.weight.grad is not None and head.bias.grad is not None
