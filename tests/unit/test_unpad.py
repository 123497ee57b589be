"""Unpadded execution equals the padded path at every real token, values and gradients."""

from __future__ import annotations

import pytest
import torch

from bertforge import FAMILIES, Encoder
from bertforge.architectures import SequenceClassifier, TokenClassifier
from bertforge.models.encoder import set_unpadded
from bertforge.models.unpad import Packing, bucket

TINY = FAMILIES["bert"].config("tiny", vocab_size=200, max_position_embeddings=32)
LENGTHS = [10, 3, 7, 1]  # uneven, one row without padding, one of a single token


def batch(lengths: list[int] = LENGTHS) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    T = max(lengths)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()  # (B, T)
    ids = torch.randint(1, 200, (len(lengths), T), generator=g) * mask
    types = (torch.arange(T)[None, :] >= 2).long() * mask  # a second segment
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def test_bucket_sizes() -> None:
    sizes = {0: 0, 1: 1, 15: 15, 16: 16, 17: 18, 33: 36, 420: 448, 4000: 4096}
    assert {n: bucket(n) for n in sizes} == sizes
    for n in range(1, 5000):
        assert n <= bucket(n) <= 1.125 * n
    assert len({bucket(n) for n in range(2049, 4097)}) == 8  # eight sizes per power of two


def test_packing_round_trip() -> None:
    mask = batch([40, 3, 7, 1])["attention_mask"]  # 51 real tokens of 160: 52 rows
    packing = Packing.from_mask(mask)
    chosen = torch.zeros(mask.numel(), dtype=torch.bool)
    chosen[packing.indices] = True
    assert len(packing.indices) == bucket(51) == 52
    assert chosen[mask.reshape(-1).bool()].all()  # every real token
    assert torch.equal(packing.indices, packing.indices.unique())  # once each, in order
    x = torch.randn(*mask.shape, 5)
    flat = packing.unpad(x)
    assert flat.shape == (52, 5)
    assert torch.equal(packing.pad(flat), x * chosen.view(*mask.shape, 1))


def test_rounding_never_exceeds_the_batch() -> None:
    mask = torch.ones(2, 17, dtype=torch.long)
    mask[1, -1] = 0  # 33 real tokens round up to 36 rows, but the batch has 34
    assert len(Packing.from_mask(mask).indices) == 34


def test_encoder_outputs_equal_at_real_tokens() -> None:
    torch.manual_seed(0)
    model = Encoder(TINY).eval()
    inputs = batch()
    real = inputs["attention_mask"].bool()
    kwargs = {"output_hidden_states": True, "output_attentions": True}
    padded = model(**inputs, **kwargs)
    model.unpad = True
    unpadded = model(**inputs, **kwargs)
    torch.testing.assert_close(unpadded.last_hidden_state[real], padded.last_hidden_state[real])
    torch.testing.assert_close(unpadded.pooler_output, padded.pooler_output)
    for ours, theirs in zip(unpadded.hidden_states, padded.hidden_states, strict=True):
        torch.testing.assert_close(ours[real], theirs[real])
    for ours, theirs in zip(unpadded.attentions, padded.attentions, strict=True):
        # probabilities of real queries; their weight on padded keys is 0 on both paths
        torch.testing.assert_close(ours.transpose(1, 2)[real], theirs.transpose(1, 2)[real])


def test_without_padding_nothing_changes() -> None:
    model = Encoder(TINY).eval()
    inputs = batch([6, 6])
    expected = model(**inputs).last_hidden_state
    model.unpad = True
    assert torch.equal(model(**inputs).last_hidden_state, expected)


@pytest.mark.parametrize("head", [SequenceClassifier, TokenClassifier])
def test_head_gradients_equal(head: type[torch.nn.Module]) -> None:
    torch.manual_seed(0)
    config = TINY.replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = head(config, num_labels=3).train()
    inputs = batch()
    real = inputs["attention_mask"].bool()

    def grads(unpad: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        set_unpadded(model, unpad)
        model.zero_grad()
        logits = model(**inputs)
        loss = (logits[real] if logits.dim() == 3 else logits).square().sum()
        loss.backward()
        return logits, {n: p.grad.clone() for n, p in model.named_parameters()}

    padded_logits, padded_grads = grads(False)
    logits, unpadded_grads = grads(True)
    if logits.dim() == 3:
        logits, padded_logits = logits[real], padded_logits[real]
    torch.testing.assert_close(logits, padded_logits)
    for name, grad in padded_grads.items():
        torch.testing.assert_close(unpadded_grads[name], grad, msg=name)
