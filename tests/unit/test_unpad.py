"""Unpadded execution equals the padded path at every real token, values and gradients."""

from __future__ import annotations

import pytest
import torch

from bertforge import Encoder, EncoderConfig
from bertforge.heads import SequenceClassifier, TokenClassifier
from bertforge.models.encoder import set_unpadded
from bertforge.models.unpad import Packing

TINY = EncoderConfig.preset("tiny", vocab_size=200, max_position_embeddings=32)
LENGTHS = [10, 3, 7, 1]  # uneven, one row without padding, one of a single token


def batch(lengths: list[int] = LENGTHS) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    T = max(lengths)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()  # (B, T)
    ids = torch.randint(1, 200, (len(lengths), T), generator=g) * mask
    types = (torch.arange(T)[None, :] >= 2).long() * mask  # a second segment
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def test_packing_round_trip() -> None:
    mask = batch()["attention_mask"]
    packing = Packing.from_mask(mask)
    x = torch.randn(*mask.shape, 5)
    flat = packing.unpad(x)
    assert flat.shape == (sum(LENGTHS), 5)
    assert torch.equal(packing.pad(flat), x * mask[..., None])


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
    assert not unpadded.last_hidden_state[~real].any()  # zeros where nothing should read
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
