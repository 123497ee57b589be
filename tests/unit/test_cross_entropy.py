"""The fused summed cross-entropy against `F.cross_entropy` and an argmax."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from bertforge.objectives.cross_entropy import summed_cross_entropy


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("ignore_index", [-100, 7])  # 7 = C: QA's "beyond the window" label
def test_loss_gradient_and_accuracy_match_torch(dtype: torch.dtype, ignore_index: int) -> None:
    torch.manual_seed(0)
    logits = torch.randn(50, 7).to(dtype)
    labels = torch.randint(0, 7, (50,))
    labels[::5] = ignore_index
    labels[1::5] = logits[1::5].float().argmax(-1)  # some rows right for sure
    mine = logits.clone().requires_grad_()
    theirs = logits.clone().requires_grad_()
    loss, count, correct = summed_cross_entropy(mine, labels, ignore_index)
    expected = F.cross_entropy(theirs.float(), labels, ignore_index=ignore_index, reduction="sum")
    (2 * loss).backward()
    (2 * expected).backward()
    assert_close(loss, expected)
    assert mine.grad.dtype == dtype
    assert_close(mine.grad, theirs.grad)
    valid = labels != ignore_index
    assert int(count) == int(valid.sum()) == 40
    assert int(correct) == int(((logits.float().argmax(-1) == labels) & valid).sum()) >= 10


def test_ties_count_as_right_only_for_the_argmax() -> None:
    """An untrained head that outputs a constant must not score 100%: as with `argmax`, only
    the first of tied classes is the prediction."""
    logits = torch.zeros(4, 3, requires_grad=True)
    _, _, correct = summed_cross_entropy(logits, torch.tensor([0, 1, 2, 0]), -100)
    assert int(correct) == 2


def test_a_second_backward_fails_loudly() -> None:
    """The backward reuses the saved log-probabilities in place; reusing the graph must raise
    rather than read a gradient as log-probabilities."""
    logits = torch.randn(3, 4, requires_grad=True)
    loss, _, _ = summed_cross_entropy(logits, torch.tensor([0, 1, 2]), -100)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
