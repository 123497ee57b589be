"""Fine-tuning objectives give the `.loss` transformers computes on the same logits and
labels (one micro-batch: each objective's sum over its count, weighted)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers
from tiny import TINY
from torch.testing import assert_close

from bertforge.objectives import (
    Classification,
    Objective,
    Tagging,
    count_targets,
    span_objectives,
    total_loss,
)

CONFIG = {**TINY, "num_hidden_layers": 1}


def hf(cls: type, **extra: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return cls(transformers.BertConfig(**CONFIG, **extra)).eval()


def step_loss(objectives: list[Objective], output: Any, batch: dict) -> torch.Tensor:
    """The loss the shared step core trains on for one micro-batch."""
    sums = {o.name: o.loss(output, batch) for o in objectives}
    weights = {o.name: o.weight for o in objectives}
    return total_loss(sums, count_targets(objectives, [batch]), weights)


def ids(*shape: int) -> torch.Tensor:
    return torch.randint(1, CONFIG["vocab_size"], shape, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize(
    ("problem", "num_labels", "labels"),
    [
        ("single_label", 3, torch.tensor([0, 2, 1, 2])),
        ("regression", 1, torch.tensor([0.5, -1.0, 2.0, 0.0])),
    ],
)
def test_classification(problem: str, num_labels: int, labels: torch.Tensor) -> None:
    problem_type = {"single_label": "single_label_classification"}.get(problem, problem)
    model = hf(
        transformers.BertForSequenceClassification,
        num_labels=num_labels,
        problem_type=problem_type,
    )
    with torch.no_grad():
        out = model(ids(4, 6), labels=labels)
    assert_close(step_loss([Classification(problem)], out.logits, {"labels": labels}), out.loss)


def test_token_classification_ignores_minus_100() -> None:
    model = hf(transformers.BertForTokenClassification, num_labels=5)
    labels = torch.randint(0, 5, (2, 7), generator=torch.Generator().manual_seed(4))
    labels[0, 0] = labels[1, 4:] = -100
    with torch.no_grad():
        out = model(ids(2, 7), labels=labels)
    batch = {"labels": labels}
    assert_close(step_loss([Tagging()], out.logits, batch), out.loss)
    # Changing the logits at ignored positions changes nothing.
    moved = out.logits.clone()
    moved[1, 5] += 10.0
    assert_close(step_loss([Tagging()], moved, batch), out.loss)


def test_all_ignored_is_zero_not_nan() -> None:
    logits = torch.randn(2, 3, 4)
    loss = step_loss([Tagging()], logits, {"labels": torch.full((2, 3), -100)})
    assert loss.item() == 0.0


def test_qa_clamps_and_ignores_out_of_window_positions() -> None:
    model = hf(transformers.BertForQuestionAnswering)
    starts = torch.tensor([1, 3, 50, -2])  # 50: past T=8, ignored; -2: clamped to 0
    ends = torch.tensor([2, 9, 60, 4])  # 9: past T=8, ignored
    inputs = ids(4, 8)
    with torch.no_grad():
        out = model(inputs, start_positions=starts, end_positions=ends)
    batch = {"input_ids": inputs, "start_positions": starts, "end_positions": ends}
    spans = (out.start_logits, out.end_logits)
    assert_close(step_loss(span_objectives(), spans, batch), out.loss)


def test_multiple_choice() -> None:
    model = hf(transformers.BertForMultipleChoice)
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        out = model(ids(2, 3, 5), labels=labels)
    assert_close(step_loss([Classification()], out.logits, {"labels": labels}), out.loss)
