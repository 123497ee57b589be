"""The fast and the parameter-efficient paths work for every family, each checked against the
plain path: unpadded execution, the sparse MLM head, bf16 autocast, LoRA and adapters."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from bertforge import (
    FAMILIES,
    EncoderConfig,
    PreTrainingModel,
    QuestionAnswering,
    SequenceClassifier,
    TokenClassifier,
)
from bertforge.finetuning.strategies import get_strategy
from bertforge.models.encoder import set_unpadded
from bertforge.peft import apply_adapters, apply_lora, merge_lora, set_trainable
from bertforge.peft.lora import LoRALinear

VOCAB = 100
PAD = {"roberta": 1}  # RoBERTa pads with id 1; the others with 0
# Factorized embeddings where the family has them, so the E -> H map is on every path.
EXTRA = {"albert": {"embedding_size": 32}, "electra": {"embedding_size": 32}}


def mark(model: torch.nn.Module, strategy: str) -> None:
    """Set which parameters train as the fine-tuning strategy does."""
    set_trainable(model, get_strategy(strategy).keep(model))


def config(name: str) -> EncoderConfig:
    return FAMILIES[name].config(
        "tiny",
        vocab_size=VOCAB,
        pad_token_id=PAD.get(name, 0),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **EXTRA.get(name, {}),
    )


def batch(name: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([10, 3, 7, 1])
    mask = (torch.arange(10)[None, :] < lengths[:, None]).long()  # (4, 10)
    ids = torch.randint(5, VOCAB, (4, 10), generator=g).masked_fill(mask == 0, PAD.get(name, 0))
    types = (torch.arange(10)[None, :] >= 5).long() * mask if name not in ("roberta",) else None
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def real(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x[mask.bool()]


MODELS = {
    "sequence": lambda c: SequenceClassifier(c, 3),
    "token": lambda c: TokenClassifier(c, 3),
    "qa": lambda c: QuestionAnswering(c),
    "mlm": lambda c: PreTrainingModel(c, heads=("mlm",)),
}


def outputs(model: torch.nn.Module, b: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    out = model(**b)
    mask = b["attention_mask"]
    if isinstance(out, tuple):  # QA spans
        return [real(t, mask) for t in out]
    if hasattr(out, "mlm_logits"):
        return [real(out.mlm_logits, mask)]
    return [real(out, mask)] if out.dim() == 3 else [out]


FAMILY_MODELS = [(f, m) for f in FAMILIES for m in MODELS]


@pytest.mark.parametrize(("name", "kind"), FAMILY_MODELS, ids=lambda x: x)
def test_unpadded_equals_padded(name: str, kind: str) -> None:
    torch.manual_seed(0)
    model = MODELS[kind](config(name)).eval()
    b = batch(name)
    with torch.no_grad():
        padded = outputs(model, b)
        set_unpadded(model)
        unpadded = outputs(model, b)
    for u, p in zip(unpadded, padded, strict=True):
        assert_close(u, p, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_sparse_mlm_head_equals_dense_rows(name: str) -> None:
    torch.manual_seed(0)
    model = PreTrainingModel(config(name), heads=("mlm",)).eval()
    b = batch(name)
    picked = torch.zeros_like(b["input_ids"], dtype=torch.bool)
    picked[0, [1, 4, 9]] = picked[2, 2] = True
    with torch.no_grad():
        dense = model(**b).mlm_logits  # (B, T, V)
        sparse = model(**b, masked_positions=picked).mlm_logits  # (M, V)
    assert sparse.shape == (4, VOCAB)
    assert_close(sparse, dense[picked])


@pytest.mark.parametrize(("name", "kind"), FAMILY_MODELS, ids=lambda x: x)
def test_bf16_autocast_tracks_fp32_and_trains(name: str, kind: str) -> None:
    torch.manual_seed(0)
    model = MODELS[kind](config(name)).eval()  # heads keep their dropout: compare without
    b = batch(name)
    with torch.no_grad():
        reference = outputs(model, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = outputs(model, b)
        loss = sum(t.float().square().mean() for t in outputs(model.train(), b))
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    for lo, ref in zip(low, reference, strict=True):
        assert lo.dtype == torch.bfloat16
        # bf16 keeps ~3 significant digits: compare the error to the outputs' scale.
        error = (lo.float() - ref).norm() / ref.norm()
        assert error < 0.03, f"relative error {error:.3f}"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_lora_starts_as_the_model_and_merges_to_what_it_computes(name: str) -> None:
    torch.manual_seed(0)
    model = SequenceClassifier(config(name), 3).eval()
    b = batch(name)
    with torch.no_grad():
        plain = model(**b)
        apply_lora(model, r=4)
        assert_close(model(**b), plain)  # B = 0: no change yet
        wrapped = [m for m in model.modules() if isinstance(m, LoRALinear)]
        # One wrap per distinct block: ALBERT's shared block is adapted once, used by all.
        assert len(wrapped) == 2 * model.config.num_blocks
        for m in wrapped:
            m.lora_b.normal_(std=0.1)
        adapted = model(**b)
        assert not torch.allclose(adapted, plain)
        assert_close(merge_lora(model)(**b), adapted, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_adapters_with_zero_weights_are_the_identity(name: str) -> None:
    torch.manual_seed(0)
    model = SequenceClassifier(config(name), 3).eval()
    b = batch(name)
    with torch.no_grad():
        plain = model(**b)
        apply_adapters(model, size=8)
        for key, p in model.named_parameters():
            if ".adapter." in key:
                p.zero_()
        assert_close(model(**b), plain)
    mark(model, "adapter")
    trained = {k for k, p in model.named_parameters() if p.requires_grad}
    assert any(".adapter." in k for k in trained) and any(k.startswith("head.") for k in trained)
    assert not any(k.endswith(("qkv.weight", "ffn.up.weight")) for k in trained)
