"""The encoder's CPU dropout: the rate, the scaling, determinism, gradients, eval mode."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from bertforge.models.dropout import Dropout

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
