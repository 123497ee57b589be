"""LoRA, bottleneck adapters, trainable-parameter strategies (and the frozen strategy's feature
cache) and prompt classification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny import tiny_config
from torch import nn
from torch.testing import assert_close

from bertforge import (
    ConfigError,
    DataError,
    PreTrainingModel,
    SequenceClassifier,
    TokenClassifier,
)
from bertforge.finetuning import frozen
from bertforge.finetuning.strategies import get_strategy
from bertforge.peft import (
    AdaptedLinear,
    LoRALinear,
    PromptClassifier,
    apply_adapters,
    apply_lora,
    load_lora,
    lora_state_dict,
    merge_lora,
    save_lora,
    set_trainable,
    trainable_summary,
)
from bertforge.tokenization import Tokenizer

SMALL = tiny_config()
IDS = torch.randint(1, 100, (2, 9), generator=torch.Generator().manual_seed(0))


def mark(model: torch.nn.Module, strategy: str) -> None:
    """Set which parameters train as the fine-tuning strategy does."""
    set_trainable(model, get_strategy(strategy).keep(model))


def classifier() -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(SMALL, 3).eval()


def logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS)


def perturb_lora(model: nn.Module) -> None:
    """B starts at zero (LoRA is a no-op at init); give it values as training would."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_b"):
                p.normal_(std=0.05)


def test_lora_starts_as_the_base_and_merges_to_equal_outputs() -> None:
    model = classifier()
    base = logits(model)
    apply_lora(model, r=4, alpha=8)
    assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 2 * SMALL.num_hidden_layers
    assert_close(logits(model), base)
    perturb_lora(model)
    adapted = logits(model)
    assert not torch.allclose(adapted, base)
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert type(model.encoder.layers[0].attn.qkv) is nn.Linear
    assert_close(logits(model), adapted, atol=1e-5, rtol=1e-5)


def test_lora_trains_only_lora_and_head() -> None:
    model = apply_lora(classifier(), r=4)
    mark(model, "lora")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(lora_state_dict(model))
    assert "head.out.weight" in trainable and "encoder.pooler.dense.weight" in trainable
    assert not any("base" in n or "norm" in n for n in trainable)
    H, L, r, C = SMALL.hidden_size, SMALL.num_hidden_layers, 4, 3
    lora = L * (r * H + 3 * H * r + r * H + H * r)  # qkv: A (r, H), B (3H, r); out: (r,H),(H,r)
    head = H * H + H + C * H + C
    n_trainable, total = trainable_summary(model)
    assert n_trainable == lora + head
    assert total == sum(p.numel() for p in model.parameters())


def test_lora_save_and_load(tmp_path: Path) -> None:
    model = apply_lora(classifier(), r=4, alpha=8)
    perturb_lora(model)
    save_lora(model, tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["r"] == 4
    fresh = classifier()  # same seed: same base weights, untrained LoRA
    load_lora(fresh, tmp_path)
    assert_close(logits(fresh), logits(model))


def test_lora_refuses_unknown_targets_and_double_wrapping() -> None:
    with pytest.raises(ConfigError, match=r"attn\.query"):
        apply_lora(classifier(), targets=("attn.query",))
    model = apply_lora(classifier())
    with pytest.raises(ConfigError, match="already"):
        apply_lora(model)


def test_adapters_start_near_the_base_and_train_norms_and_head() -> None:
    model = classifier()
    base = logits(model)
    apply_adapters(model, size=8)
    assert sum(isinstance(m, AdaptedLinear) for m in model.modules()) == 4
    assert_close(logits(model), base, atol=1e-3, rtol=0)
    mark(model, "adapter")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "encoder.layers.0.attn.out.adapter.down.weight" in trainable
    assert "encoder.layers.1.ffn_norm.weight" in trainable
    assert "encoder.embeddings.norm.bias" in trainable
    assert "head.out.bias" in trainable
    assert "encoder.layers.0.attn.out.base.weight" not in trainable
    assert "encoder.layers.0.attn.qkv.weight" not in trainable


def test_strategies() -> None:
    model = classifier()
    mark(model, "frozen")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "head.out.weight",
        "head.out.bias",
        "encoder.pooler.dense.weight",
        "encoder.pooler.dense.bias",
    }
    mark(model, "full")
    n, total = trainable_summary(model)
    assert n == total
    with pytest.raises(ConfigError, match="apply_lora"):
        mark(model, "lora")
    with pytest.raises(ConfigError, match="strategy 'bitfit' is not one of"):
        mark(model, "bitfit")


@pytest.fixture(scope="module")
def prompt_parts(minilm_path: Path) -> tuple[PreTrainingModel, Tokenizer]:
    tok = Tokenizer.from_pretrained(minilm_path)
    torch.manual_seed(0)
    config = SMALL.replace(vocab_size=len(tok))
    return PreTrainingModel(config, heads=("mlm",)).eval(), tok


def test_prompt_logits_are_mlm_logits_of_the_verbalizer(
    prompt_parts: tuple[PreTrainingModel, Tokenizer],
) -> None:
    mlm, tok = prompt_parts
    verbalizer = {"negative": "terrible", "positive": "great"}
    prompt = PromptClassifier(mlm, tok, "{text} It was [MASK].", verbalizer)
    batch = prompt.encode(["a fine film", "the plot was a mess from start to end"])
    with torch.no_grad():
        got = prompt(**batch)
        full = mlm(**batch).mlm_logits  # (B, T, V)
    assert got.shape == (2, 2)
    rows = (batch["input_ids"] == tok.mask_token_id).nonzero()
    word_ids = tok.convert_tokens_to_ids(["terrible", "great"])
    assert_close(got, full[rows[:, 0], rows[:, 1]][:, word_ids])
    assert all(p in verbalizer for p in prompt.predict(["ok"]))


def test_prompt_errors(prompt_parts: tuple[PreTrainingModel, Tokenizer]) -> None:
    mlm, tok = prompt_parts
    with pytest.raises(ConfigError, match="unbelievably"):
        PromptClassifier(mlm, tok, "{text} It was [MASK].", {"a": "great", "b": "unbelievably"})
    with pytest.raises(ConfigError, match=r"\[MASK\]"):
        PromptClassifier(mlm, tok, "{text} It was good.", {"a": "great"})
    prompt = PromptClassifier(mlm, tok, "{text} It was [MASK].", {"a": "great", "b": "bad"})
    batch = prompt.encode(["long text " * 10], max_length=8)  # truncation cuts the mask away
    with pytest.raises(DataError, match="0 mask tokens"):
        prompt(**batch)


ROWS = [[2, 7, 9, 3], [2, 5, 3], [2, 11, 12, 13, 14, 3]]  # different lengths, one batch


def features() -> dict[str, list[list[int]]]:
    return {
        "input_ids": ROWS,
        "token_type_ids": [[0] * len(r) for r in ROWS],
        "attention_mask": [[1] * len(r) for r in ROWS],
    }


@pytest.mark.parametrize("head", [SequenceClassifier, TokenClassifier])
def test_cache_stores_each_row_alone_and_replays_the_encoder(head: type) -> None:
    torch.manual_seed(0)
    model = head(SMALL, 3).eval()
    encoder = model.encoder
    cache = frozen.install(model, "first" if head is SequenceClassifier else "tokens")
    cache.fill("train", features(), pad_id=0, batch_size=8, device=torch.device("cpu"))
    for row, ids in zip(cache.store["train"], ROWS, strict=True):
        # Its own storage: a view would pin the whole padded (B, T, H) batch in memory.
        assert row.untyped_storage().nbytes() == row.numel() * row.element_size()
        with torch.no_grad():
            alone = encoder(torch.tensor([ids])).last_hidden_state[0]  # (T, H)
        assert_close(row, alone[0] if cache.pooled else alone, atol=1e-5, rtol=1e-5)
    ids = torch.tensor([ROWS[2], ROWS[0] + [0, 0]])  # (2, 6), the second row padded
    mask = (ids != 0).long()
    cache.select("train", [2, 0])
    with torch.no_grad():
        replayed = model(ids)
        model.encoder = encoder
        live = model(ids, mask)
    if cache.pooled:
        assert_close(replayed, live, atol=1e-5, rtol=1e-5)
    else:  # the cache pads with zero states; compare the real tokens
        assert_close(replayed[0], live[0], atol=1e-5, rtol=1e-5)
        assert_close(replayed[1, :4], live[1, :4], atol=1e-5, rtol=1e-5)
