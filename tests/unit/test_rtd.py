"""ELECTRA's replaced-token detection: the loss against a direct formula (weight, padding),
the logged ratios, and the generator/discriminator pair (labels, gradients, shapes)."""

from __future__ import annotations

import math

import pytest
import torch
from tiny import SMALL

from bertforge import FAMILIES
from bertforge.architectures.electra import ElectraPreTraining, generator_config
from bertforge.errors import ConfigError
from bertforge.objectives import MaskedLM, ReplacedTokenDetection, rtd_loss, total_loss
from bertforge.training.step import StepStats


def batch() -> dict[str, torch.Tensor]:
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 2] = 7, 9
    return {"attention_mask": mask, "mlm_labels": labels}


def test_loss_is_bce_over_real_tokens_only() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0, 1.0], [0.0, 4.0, -2.0, 99.0, -99.0]])
    replaced = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 1, 1]]).bool()
    sums = rtd_loss(logits, replaced, batch()["attention_mask"])
    direct, right = 0.0, 0
    for row, col in [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (1, 2)]:
        x, y = float(logits[row, col]), float(replaced[row, col])
        p = 1 / (1 + math.exp(-x))
        direct -= y * math.log(p) + (1 - y) * math.log(1 - p)
        right += (x > 0) == bool(y)
    assert int(sums.count) == 8  # the two padded positions (whatever their logits) are skipped
    assert float(sums.loss) == pytest.approx(direct, rel=1e-6)
    assert int(sums.metrics["acc"]) == right
    # Predicted replaced: (0,0), (0,2), (0,4), (1,1); actually replaced: (0,0), (0,2), (1,1).
    assert (int(sums.metrics["tp"]), int(sums.metrics["predicted"])) == (3, 4)
    assert int(sums.metrics["replaced"]) == 3


def test_weight_50_against_the_generator_mlm() -> None:
    rtd, mlm = ReplacedTokenDetection(), MaskedLM()
    assert (rtd.weight, mlm.weight) == (50.0, 1.0)
    b = batch()
    assert rtd.count(b) == 8 and mlm.count(b) == 2
    parts = {
        "mlm": rtd_loss(torch.zeros(1, 2), torch.zeros(1, 2).bool(), torch.ones(1, 2)),
        "rtd": rtd_loss(torch.zeros(2, 5), torch.zeros(2, 5).bool(), b["attention_mask"]),
    }
    counts = {"mlm": 2, "rtd": 8}
    loss = total_loss(parts, counts, {"mlm": 1.0, "rtd": 50.0})
    assert float(loss) == pytest.approx(math.log(2) + 50 * math.log(2), rel=1e-6)


def test_logged_precision_and_recall() -> None:
    stats = StepStats()
    logits = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    replaced = torch.tensor([[True, False, True, False]])
    stats.add({"rtd": rtd_loss(logits, replaced, torch.ones(1, 4))}, tokens=4)
    rates = stats.rates([ReplacedTokenDetection()])
    assert rates["rtd_precision"] == 0.5 and rates["rtd_recall"] == 0.5
    assert rates["rtd_acc"] == 0.5 and rates["rtd_replaced_share"] == 0.5
    assert "rtd_tp" not in rates and "rtd_predicted" not in rates


def test_generator_is_a_fraction_of_the_discriminator() -> None:
    disc = FAMILIES["electra"].config("small", vocab_size=100, pad_token_id=0)
    gen = generator_config(disc, 0.25)
    assert (gen.hidden_size, gen.num_attention_heads) == (64, 1)
    assert gen.intermediate_size == 256 and gen.num_hidden_layers == 12
    assert gen.embedding_size == disc.embedding_dim == 128  # shared, lifted by its own map
    with pytest.raises(ConfigError, match=r"generator\.size"):
        generator_config(disc, 0.0)


def test_pair_labels_sampling_and_gradients() -> None:
    config = FAMILIES["electra"].config("tiny", **{**SMALL, "embedding_size": 32})
    model = ElectraPreTraining(config, generator_size=0.5)
    gen, disc = model.generator.encoder.embeddings, model.discriminator.encoder.embeddings
    assert gen.tokens is disc.tokens and gen.positions is disc.positions
    ids = torch.randint(5, config.vocab_size, (3, 10))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    labels = torch.full_like(ids, -100)
    picked = torch.zeros_like(ids, dtype=torch.bool)
    picked[:, [2, 5]] = True
    labels[picked] = ids[picked]
    masked_ids = ids.masked_fill(picked, 3)
    out = model(masked_ids, mask, torch.zeros_like(ids), picked, labels)
    assert out.mlm_logits.shape == (6, config.vocab_size) and out.rtd_logits.shape == (3, 10)
    # Only masked positions can be replaced, and only where the sample differs from the truth.
    assert not out.replaced[~picked].any()
    # The discriminator's loss reaches the shared embeddings but not the generator's layers.
    sums = rtd_loss(out.rtd_logits, out.replaced, mask)
    sums.loss.backward()
    assert model.generator.encoder.layers[0].attn.qkv.weight.grad is None
    assert (
        disc.tokens.weight.grad is not None and model.discriminator.rtd.out.weight.grad is not None
    )


def test_samples_follow_the_given_draws() -> None:
    """With the collator's draws the replacements are a function of the batch: the same
    draws give the same corrupted input, other draws another."""
    config = FAMILIES["electra"].config("tiny", **{**SMALL, "embedding_size": 32})
    model = ElectraPreTraining(config, generator_size=0.5).eval()
    ids = torch.randint(5, config.vocab_size, (2, 12))
    picked = torch.rand(2, 12) < 0.5
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = (ids.masked_fill(picked, 3), torch.ones_like(ids), torch.zeros_like(ids), picked)
    draws = torch.rand(2, 12)
    with torch.no_grad():
        a = model(*inputs, labels, draws)
        torch.manual_seed(123)  # the global RNG plays no part
        b = model(*inputs, labels, draws)
        c = model(*inputs, labels, torch.rand(2, 12))
    assert torch.equal(a.replaced, b.replaced) and torch.equal(a.rtd_logits, b.rtd_logits)
    assert not torch.equal(a.rtd_logits, c.rtd_logits)


@pytest.mark.parametrize("sharing", ["gdes", "shared"])
def test_gdes_sends_the_replaced_token_loss_into_the_delta_only(sharing: str) -> None:
    """GDES (DeBERTa-v3): the discriminator's loss reaches its own delta and never the
    generator's token table, which only the MLM trains; plain sharing (ELECTRA) lets both
    losses pull the one table."""
    config = FAMILIES["deberta-v2"].config(
        "tiny", vocab_size=100, max_position_embeddings=32, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = ElectraPreTraining(config, generator_size=1.0, generator_depth=0.5, sharing=sharing)
    assert model.generator.config.num_hidden_layers == config.num_hidden_layers // 2
    assert model.generator.config.hidden_size == config.hidden_size
    table = model.generator.encoder.embeddings.tokens.weight
    ids = torch.randint(5, 100, (2, 9))
    masked = torch.zeros_like(ids, dtype=torch.bool)
    masked[:, [2, 5]] = True
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    inputs = ids.masked_fill(masked, 3)
    mask = torch.ones_like(ids)

    def grads(loss_of) -> tuple[torch.Tensor, torch.Tensor | None]:
        model.zero_grad(set_to_none=True)
        out = model(inputs, mask, torch.zeros_like(ids), masked, labels)
        loss_of(out).backward()
        delta = getattr(model.discriminator.encoder.embeddings.tokens, "delta", None)
        return table.grad, None if delta is None else delta.grad

    def rtd(out) -> torch.Tensor:
        return rtd_loss(out.rtd_logits, out.replaced, mask).loss

    def mlm(out) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(out.mlm_logits, labels[masked])

    shared_grad, delta_grad = grads(rtd)
    if sharing == "gdes":
        assert shared_grad is None or float(shared_grad.abs().max()) == 0.0
        assert delta_grad is not None and float(delta_grad.abs().max()) > 0
        shared_grad, delta_grad = grads(mlm)
        assert float(shared_grad.abs().max()) > 0
        assert delta_grad is None or float(delta_grad.abs().max()) == 0.0
        # The delta starts at zero: the discriminator sees the generator's table as it is.
        folded = model.folded_discriminator().encoder.embeddings.tokens.weight
        torch.testing.assert_close(folded, table.detach())
    else:
        assert float(shared_grad.abs().max()) > 0
