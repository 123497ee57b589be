"""DistilBERT distillation losses: KL against a hand-written formula, the T^2 scaling and its
gradient, which positions count, the cosine loss, and the mean HF's distiller reports."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from bertforge.objectives.distill import DistillCosine, DistillKL
from bertforge.objectives.loss import LossSums

B, T, V, H = 3, 6, 13, 8


@dataclass
class Output:
    """What the distillation model returns: logits at the distilled positions, hidden states
    at the real tokens, both row-major."""

    student_logits: torch.Tensor  # (N, V)
    teacher_logits: torch.Tensor  # (N, V)
    student_hidden: torch.Tensor  # (R, H)
    teacher_hidden: torch.Tensor  # (R, H)


def make_batch() -> dict[str, torch.Tensor]:
    lengths = torch.tensor([6, 4, 2])
    attention_mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)
    mlm_labels = torch.full((B, T), -100)
    mlm_labels[0, 1], mlm_labels[0, 4], mlm_labels[1, 2], mlm_labels[2, 0] = 5, 7, 9, 11
    return {"attention_mask": attention_mask, "mlm_labels": mlm_labels}


def dense(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Student/teacher logits (B, T, V) and hidden states (B, T, H) for the whole batch."""
    g = torch.Generator().manual_seed(seed)
    return (
        3 * torch.randn(B, T, V, generator=g),
        3 * torch.randn(B, T, V, generator=g),
        torch.randn(B, T, H, generator=g),
        torch.randn(B, T, H, generator=g),
    )


def run(
    objective: DistillKL | DistillCosine, batch: dict[str, torch.Tensor], seed: int = 0
) -> LossSums:
    """The objective's sums on the model output gathered as the model would gather it."""
    s, t, sh, th = dense(seed)
    real = batch["attention_mask"].bool()
    pos = objective.inputs(batch).get("distill_positions", real)
    return objective.loss(Output(s[pos], t[pos], sh[real], th[real]), batch)


def manual_kl(s: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * sum over rows of sum_v p_v (log p_v - log q_v), p = softmax(t/T), q = softmax(s/T)."""
    log_p = torch.log_softmax(t / temperature, dim=-1)  # (N, V)
    log_q = torch.log_softmax(s / temperature, dim=-1)  # (N, V)
    return (log_p.exp() * (log_p - log_q)).sum() * temperature**2


@pytest.mark.parametrize("masked_only", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kl_matches_formula(masked_only: bool, temperature: float) -> None:
    batch = make_batch()
    objective = DistillKL(temperature=temperature, masked_only=masked_only)
    sums = run(objective, batch)
    s, t, _, _ = dense(0)
    # Walk the (b, t) grid by hand: padding must never enter.
    rows = [
        (b, i)
        for b in range(B)
        for i in range(T)
        if batch["attention_mask"][b, i] and (not masked_only or batch["mlm_labels"][b, i] >= 0)
    ]
    s_sel = torch.stack([s[b, i] for b, i in rows])  # (N, V)
    t_sel = torch.stack([t[b, i] for b, i in rows])  # (N, V)
    assert_close(sums.loss, manual_kl(s_sel, t_sel, temperature))
    agree = sum(int(s[b, i].argmax() == t[b, i].argmax()) for b, i in rows)
    assert int(sums.metrics["agree"]) == agree
    assert int(sums.count) == objective.count(batch) == len(rows) == (4 if masked_only else 12)
    assert sums.loss.dtype == torch.float32


def test_kl_at_temperature_one_is_plain_kl() -> None:
    s = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    t = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    p, q = t.softmax(-1), s.softmax(-1)
    expected = (p * (p.log() - q.log())).sum()
    batch = {"attention_mask": torch.ones(1, 2, dtype=torch.long)}
    sums = DistillKL(temperature=1.0).loss(Output(s, t, s, t), batch)
    assert_close(sums.loss, expected)
    # At T=2 the T^2 factor is on top of the softened KL, not instead of it.
    sums2 = DistillKL(temperature=2.0).loss(Output(s, t, s, t), batch)
    p2, q2 = (t / 2).softmax(-1), (s / 2).softmax(-1)
    assert_close(sums2.loss, 4 * (p2 * (p2.log() - q2.log())).sum())


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_kl_gradient_is_temperature_times_probability_gap(temperature: float) -> None:
    s, t, _, _ = dense(1)
    s, t = s.reshape(-1, V), t.reshape(-1, V)  # (N, V)
    s.requires_grad_(True)
    t.requires_grad_(True)
    batch = {"attention_mask": torch.ones(1, s.shape[0], dtype=torch.long)}
    sums = DistillKL(temperature=temperature).loss(Output(s, t, s, t), batch)
    sums.loss.backward()
    # Each row's summand differentiates on its own: no 1/N here, the step divides later.
    expected = temperature * ((s / temperature).softmax(-1) - (t / temperature).softmax(-1))
    assert_close(s.grad, expected.detach())
    assert t.grad is None  # the teacher is a fixed target


def test_kl_of_equal_logits_is_zero() -> None:
    s, _, _, _ = dense(2)
    batch = make_batch()
    pos = DistillKL().inputs(batch)["distill_positions"]
    logits = s[pos]  # (N, V)
    sums = DistillKL().loss(Output(logits, logits.clone(), logits, logits), batch)
    assert_close(sums.loss, torch.tensor(0.0))
    assert int(sums.metrics["agree"]) == int(sums.count) == 12


def test_positions_skip_padding_and_unmasked() -> None:
    batch = make_batch()
    batch["mlm_labels"][2, 4] = 3  # a label on padding (a malformed batch) is still skipped
    every = DistillKL().inputs(batch)["distill_positions"]
    masked = DistillKL(masked_only=True).inputs(batch)["distill_positions"]
    assert every.dtype == torch.bool and torch.equal(every, batch["attention_mask"].bool())
    expected = torch.zeros(B, T, dtype=torch.bool)
    expected[0, 1] = expected[0, 4] = expected[1, 2] = expected[2, 0] = True
    assert torch.equal(masked, expected)
    assert DistillKL(masked_only=True).count(batch) == 4


def test_mean_equals_hf_batchmean() -> None:
    s, t, _, _ = dense(3)
    s, t = s.reshape(-1, V), t.reshape(-1, V)
    batch = {"attention_mask": torch.ones(1, s.shape[0], dtype=torch.long)}
    sums = DistillKL(temperature=2.0).loss(Output(s, t, s, t), batch)
    # distiller.py: KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T)) * T^2
    hf = nn.KLDivLoss(reduction="batchmean")(
        torch.log_softmax(s / 2.0, dim=-1), torch.softmax(t / 2.0, dim=-1)
    )
    assert_close(sums.mean(), hf * 4.0)


def test_cosine_matches_formula_and_counts_real_tokens() -> None:
    batch = make_batch()
    objective = DistillCosine()
    sums = run(objective, batch, seed=4)
    _, _, sh, th = dense(4)
    real = batch["attention_mask"].bool()
    s, t = sh[real], th[real]  # (R, H)
    cos = (s * t).sum(-1) / (s.norm(dim=-1) * t.norm(dim=-1))  # (R,)
    assert_close(sums.loss, (1 - cos).sum())
    assert int(sums.count) == objective.count(batch) == 12
    assert objective.inputs(batch) == {} and objective.fields == ()
    # distiller.py: CosineEmbeddingLoss(reduction="mean") with target 1.
    hf = nn.CosineEmbeddingLoss(reduction="mean")(s, t, torch.ones(s.shape[0]))
    assert_close(sums.mean(), hf)


def test_cosine_is_zero_for_same_direction() -> None:
    _, _, sh, _ = dense(5)
    h = sh.reshape(-1, H).requires_grad_(True)  # (R, H)
    batch = {"attention_mask": torch.ones(1, h.shape[0], dtype=torch.long)}
    objective = DistillCosine()
    assert_close(objective.loss(Output(h, h, h, h.detach()), batch).loss, torch.tensor(0.0))
    # Only the direction matters: a scaled teacher is matched as well.
    sums = objective.loss(Output(h, h, h, 3 * h.detach()), batch)
    assert_close(sums.loss, torch.tensor(0.0), atol=1e-5, rtol=0)


def test_half_precision_inputs_give_float32_sums() -> None:
    s, t, sh, th = dense(6)
    s, t = s.reshape(-1, V).bfloat16(), t.reshape(-1, V).bfloat16()
    sh, th = sh.reshape(-1, H).bfloat16(), th.reshape(-1, H).bfloat16()
    batch = {"attention_mask": torch.ones(1, s.shape[0], dtype=torch.long)}
    out = Output(s, t, sh, th)
    assert DistillKL().loss(out, batch).loss.dtype == torch.float32
    assert DistillCosine().loss(out, batch).loss.dtype == torch.float32
    assert_close(DistillKL().loss(out, batch).loss, manual_kl(s.float(), t.float(), 2.0))


def test_defaults() -> None:
    kl, cos = DistillKL(), DistillCosine()
    assert (kl.name, kl.weight, kl.temperature, kl.masked_only) == ("distill_ce", 5.0, 2.0, False)
    assert kl.fields == ("mlm_labels",)
    assert (cos.name, cos.weight) == ("distill_cos", 1.0)
    with pytest.raises(AttributeError):
        kl.temperature = 3.0  # type: ignore[misc]
