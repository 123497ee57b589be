"""Fine-tuning losses equal the `.loss` transformers computes on the same logits and labels."""

from __future__ import annotations

import pytest
import torch
import transformers
from torch.testing import assert_close

from bertforge.objectives import (
    classification_loss,
    multiple_choice_loss,
    qa_loss,
    token_classification_loss,
)

CONFIG = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 32,
}


def hf(cls: type, **extra: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return cls(transformers.BertConfig(**CONFIG, **extra)).eval()


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
    assert_close(classification_loss(out.logits, labels, problem), out.loss)


def test_token_classification_ignores_minus_100() -> None:
    model = hf(transformers.BertForTokenClassification, num_labels=5)
    labels = torch.randint(0, 5, (2, 7), generator=torch.Generator().manual_seed(4))
    labels[0, 0] = labels[1, 4:] = -100
    with torch.no_grad():
        out = model(ids(2, 7), labels=labels)
    assert_close(token_classification_loss(out.logits, labels), out.loss)
    # Changing the logits at ignored positions changes nothing.
    moved = out.logits.clone()
    moved[1, 5] += 10.0
    assert_close(token_classification_loss(moved, labels), out.loss)


def test_all_ignored_is_zero_not_nan() -> None:
    logits = torch.randn(2, 3, 4)
    loss = token_classification_loss(logits, torch.full((2, 3), -100))
    assert loss.item() == 0.0


def test_qa_clamps_and_ignores_out_of_window_positions() -> None:
    model = hf(transformers.BertForQuestionAnswering)
    starts = torch.tensor([1, 3, 50, -2])  # 50: past T=8, ignored; -2: clamped to 0
    ends = torch.tensor([2, 9, 60, 4])  # 9: past T=8, ignored
    with torch.no_grad():
        out = model(ids(4, 8), start_positions=starts, end_positions=ends)
    assert_close(qa_loss(out.start_logits, out.end_logits, starts, ends), out.loss)


def test_multiple_choice() -> None:
    model = hf(transformers.BertForMultipleChoice)
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        out = model(ids(2, 3, 5), labels=labels)
    assert_close(multiple_choice_loss(out.logits, labels), out.loss)
