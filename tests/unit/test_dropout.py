"""The encoder's CPU dropout: the rate, the scaling, determinism, gradients, eval mode, and
attention by hand with it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from bertforge.models.attention import softmax_attention
from bertforge.models.dropout import LEVELS, Dropout, keep_mask

# 1 / keep rate, in float32: 6,554 of 65,536 levels drop for p = 0.1.
SCALE = torch.tensor(65536 / (65536 - 6554)).item()


def test_dropout_drops_at_the_rate_and_keeps_the_expectation() -> None:
    drop = Dropout(0.1).train()
    x = torch.ones(1000, 1000)
    y = drop(x)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.9) < 0.002  # 1M draws: sd 0.0003
    assert_close(float(y.mean()), 1.0, atol=0.003, rtol=0)  # kept ones scaled by 1 / keep rate
    assert torch.equal(y[kept], torch.full_like(y[kept], SCALE))
    torch.manual_seed(3)
    first = drop(x)
    torch.manual_seed(3)
    assert torch.equal(first, drop(x))  # a function of torch's RNG state, so resume is exact
    grad = torch.ones(7, 5, requires_grad=True)
    drop(grad).sum().backward()
    assert set(grad.grad.unique().tolist()) <= {0.0, SCALE}
    assert drop.eval()(x) is x and Dropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


def test_attention_by_hand_matches_sdpa_and_drops_probabilities() -> None:
    """The CPU training path: the same attention as SDPA (padding included) without dropout,
    and with dropout the probabilities masked and rescaled by the same cheap masks."""
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 6, 8).unbind(0)  # (B, nh, T, d) each
    mask = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]], dtype=torch.bool)[:, None, None, :]
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    y, probs = softmax_attention(q, k, v, mask, 0.0)
    assert_close(y, expected)
    assert torch.all(probs[1, :, :, 4:] == 0)
    torch.manual_seed(5)
    y, _ = softmax_attention(q, k, v, mask, 0.25)
    torch.manual_seed(5)
    keep = keep_mask(probs.shape, round(0.25 * LEVELS), probs.device)
    assert_close(y, torch.where(keep, probs / (1 - 0.25), 0.0) @ v)
    assert not torch.equal(y, expected)
