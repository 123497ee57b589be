"""One pretraining step of bertforge equals one of transformers' `BertForPreTraining`, and a fresh
`PreTrainingModel` is initialised as a fresh `BertForPreTraining` is.

The step runs the production path: `MaskedLM` + `SentencePair` objectives, `training.step.forward`
and `total_loss` over the global counts of `count_targets`. Gradients are compared through the
checkpoint key map: after backward each model's parameters are overwritten with their gradients
and both are saved as HF checkpoints, so bertforge's saver splits the fused QKV and the tied
decoder's share of the gradient is in the word embeddings on both sides.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file
from tiny import SMALL, batch, hf_model
from torch.testing import assert_close

from bertforge import FAMILIES, PreTrainingModel
from bertforge.constants import IGNORE_INDEX
from bertforge.objectives import LossSums, MaskedLM, SentencePair, count_targets, total_loss
from bertforge.objectives.mlm import mlm_loss
from bertforge.training.step import forward

# Tied to the word embeddings (weight) and to `cls.predictions.bias` (bias): transformers may or
# may not write them, bertforge never does.
TIED = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


class DenseMaskedLM(MaskedLM):
    """MLM over (B, T, V) logits at every position, like transformers' dense head: no masked
    positions reach the model, and the (B, T) labels skip the -100 rows."""

    def inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, output: Any, batch: dict[str, torch.Tensor]) -> LossSums:
        return mlm_loss(output.mlm_logits, batch["mlm_labels"])


def pretraining_batch() -> dict[str, torch.Tensor]:
    """tiny's (3, 12) padded two-segment batch (rows 1 and 2 padded from 8 and 4), with MLM
    labels at a few real positions of every row (one a padded row's last real token, one the
    first) and NSP labels of both classes."""
    b = batch()
    labels = torch.full_like(b["input_ids"], IGNORE_INDEX)
    g = torch.Generator().manual_seed(2)
    for row, cols in enumerate([[0, 2, 5, 6, 11], [1, 3, 7], [0, 3]]):
        labels[row, cols] = torch.randint(0, SMALL["vocab_size"], (len(cols),), generator=g)
    assert b["attention_mask"][labels != IGNORE_INDEX].all()  # labels on real tokens only
    b["input_ids"] = b["input_ids"].masked_fill(labels != IGNORE_INDEX, 3)  # a "[MASK]" id
    return {**b, "mlm_labels": labels, "nsp_labels": torch.tensor([0, 1, 1])}


def grads_as_checkpoint(model: torch.nn.Module, save: Any, path: Path) -> dict[str, torch.Tensor]:
    """Every parameter replaced by its gradient, saved by the model's own saver, read back."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            assert p.grad is not None, f"{name} got no gradient"
            p.copy_(p.grad)
    save(path)
    return load_file(path / "model.safetensors")


def compare_grads(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    assert set(ours) == set(theirs) - TIED
    for key, grad in ours.items():
        # Seen: at most 6e-8 apart; the smallest non-zero gradients (query biases) are ~1e-4.
        assert_close(grad, theirs[key], atol=1e-6, rtol=1e-4, msg=lambda m, k=key: f"{k}: {m}")


def hf_step(tmp_path: Path, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any, dict]:
    """transformers' loss (MLM mean + NSP mean), its logits and its gradients by HF key; the
    model, saved first, is what bertforge loads."""
    hf = hf_model("bert", "ForPreTraining", **NO_DROPOUT).train()
    hf.save_pretrained(tmp_path / "hf")
    out = hf(
        input_ids=b["input_ids"],
        attention_mask=b["attention_mask"],
        token_type_ids=b["token_type_ids"],
        labels=b["mlm_labels"],
        next_sentence_label=b["nsp_labels"],
    )
    out.loss.backward()
    grads = grads_as_checkpoint(hf, hf.save_pretrained, tmp_path / "hf-grads")
    return out.loss.detach(), out, grads


def ours_model(tmp_path: Path, unpad: bool) -> PreTrainingModel:
    model = PreTrainingModel.from_pretrained(tmp_path / "hf").train()
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0
    model.encoder.unpad = unpad
    return model


@pytest.mark.parametrize("unpad", [False, True], ids=["padded", "unpadded"])
@pytest.mark.parametrize("mlm", [MaskedLM, DenseMaskedLM], ids=["sparse-mlm", "dense-mlm"])
def test_step_matches_transformers(tmp_path: Path, unpad: bool, mlm: type) -> None:
    b = pretraining_batch()
    hf_loss, hf_out, hf_grads = hf_step(tmp_path, b)

    model = ours_model(tmp_path, unpad)
    objectives = [mlm(), SentencePair()]
    counts = count_targets(objectives, [b])
    assert counts == {"mlm": 10, "nsp": 3}
    parts, tokens = forward(model, b, objectives, "fp32")
    assert tokens == int(b["attention_mask"].sum())
    loss = total_loss(parts, counts, {o.name: o.weight for o in objectives})
    loss.backward()

    # Each objective's mean on its own, then the sum transformers reports.
    keep = b["mlm_labels"] != IGNORE_INDEX
    hf_mlm = F.cross_entropy(hf_out.prediction_logits[keep], b["mlm_labels"][keep])
    hf_nsp = F.cross_entropy(hf_out.seq_relationship_logits, b["nsp_labels"])
    assert_close(parts["mlm"].loss.detach() / counts["mlm"], hf_mlm.detach(), atol=1e-5, rtol=0)
    assert_close(parts["nsp"].loss.detach() / counts["nsp"], hf_nsp.detach(), atol=1e-5, rtol=0)
    assert_close(loss.detach(), hf_loss, atol=1e-5, rtol=0)

    compare_grads(grads_as_checkpoint(model, model.save_pretrained, tmp_path / "ours"), hf_grads)


def test_accumulated_micro_batches_match_one_transformers_step(tmp_path: Path) -> None:
    """Two unpadded micro-batches, each loss divided by the global counts: their summed
    gradients are transformers' gradient of the whole batch's means."""
    b = pretraining_batch()
    hf_loss, _, hf_grads = hf_step(tmp_path, b)

    model = ours_model(tmp_path, unpad=True)
    objectives = [MaskedLM(), SentencePair()]
    micro = [{k: v[:1] for k, v in b.items()}, {k: v[1:] for k, v in b.items()}]
    counts = count_targets(objectives, micro)
    total = torch.zeros(())
    for m in micro:
        parts, _ = forward(model, m, objectives, "fp32")
        loss = total_loss(parts, counts, {o.name: o.weight for o in objectives})
        loss.backward()
        total += loss.detach()
    assert_close(total, hf_loss, atol=1e-5, rtol=0)

    compare_grads(grads_as_checkpoint(model, model.save_pretrained, tmp_path / "ours"), hf_grads)


# --- initialisation ---------------------------------------------------------------------------

VOCAB = 100
PAD = 0


def fresh_pair(tmp_path: Path, std: float) -> tuple[dict[str, torch.Tensor], dict]:
    """A fresh bertforge model, saved as HF keys, and a fresh `BertForPreTraining` of the config
    that checkpoint declares."""
    config = FAMILIES["bert"].config(
        "mini", vocab_size=VOCAB, pad_token_id=PAD, initializer_range=std
    )
    torch.manual_seed(0)
    PreTrainingModel(config).save_pretrained(tmp_path)
    ours = load_file(tmp_path / "model.safetensors")
    hf_config = transformers.BertConfig.from_pretrained(tmp_path)
    assert hf_config.initializer_range == std
    torch.manual_seed(1)
    hf = transformers.BertForPreTraining(hf_config)
    theirs = {k: v.detach() for k, v in hf.named_parameters() if k not in TIED}
    return ours, theirs


def random_values(key: str, t: torch.Tensor) -> torch.Tensor:
    """The entries drawn at random: all of them, but the word embeddings' padding row."""
    if key == "bert.embeddings.word_embeddings.weight":
        return torch.cat([t[:PAD], t[PAD + 1 :]]).flatten()
    return t.flatten()


def check_normal(key: str, x: torch.Tensor, std: float) -> None:
    """`x` looks like n draws of N(0, std): mean and std within ~6 standard errors, and (for
    large tensors) as many entries past 2 std as an untruncated normal has (4.55%)."""
    n = x.numel()
    mean, sd = float(x.mean()), float(x.std())
    assert abs(mean) < 6 * std / math.sqrt(n), f"{key}: mean {mean:.3g}, std {std}, n {n}"
    assert abs(sd / std - 1) < 6 / math.sqrt(2 * n), f"{key}: std {sd:.4g} vs {std}, n {n}"
    if n >= 10_000:
        tail = float((x.abs() > 2 * std).float().mean())
        assert abs(tail - 0.0455) < 0.01, f"{key}: {tail:.4f} past 2 std (normal: 0.0455)"


@pytest.mark.parametrize("std", [0.02, 0.05])
def test_fresh_model_initialised_like_transformers(tmp_path: Path, std: float) -> None:
    ours, theirs = fresh_pair(tmp_path, std)
    assert set(ours) == set(theirs)
    for key, hf_value in theirs.items():
        mine = ours[key]
        assert mine.shape == hf_value.shape, key
        values = random_values(key, hf_value)
        if bool((values == values[0]).all()):  # transformers' constants: LayerNorm, biases
            assert float(values[0]) in (0.0, 1.0), key
            assert torch.equal(mine, hf_value), f"{key}: transformers sets {float(values[0])}"
        else:
            check_normal(key, values, std)  # the statistics the test relies on
            check_normal(key, random_values(key, mine), std)

    # The padding row of the word embeddings starts at zero in both.
    word = "bert.embeddings.word_embeddings.weight"
    assert not theirs[word][PAD].any()
    assert not ours[word][PAD].any()
    # The MLM output bias and the NSP bias start at zero; LayerNorms at the identity.
    for key in ("cls.predictions.bias", "cls.seq_relationship.bias"):
        assert not ours[key].any()
    for key in ours:
        if "LayerNorm.weight" in key:
            assert bool((ours[key] == 1).all()), key
