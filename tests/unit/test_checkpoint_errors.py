"""Bad checkpoints fail with one clear error naming the file/key and the fix."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from tiny import tiny_config

from bertforge import (
    FAMILIES,
    CheckpointError,
    ConfigError,
    DataError,
    Encoder,
    EncoderConfig,
    PreTrainingModel,
)

TINY = tiny_config(num_hidden_layers=1, max_position_embeddings=16)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    Encoder(TINY).save_pretrained(d)
    return d


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        Encoder.from_pretrained(tmp_path / "nope")


def test_missing_config(saved: Path) -> None:
    (saved / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"has no config\.json"):
        Encoder.from_pretrained(saved)


def test_corrupt_config(saved: Path) -> None:
    (saved / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json' is not valid JSON"):
        Encoder.from_pretrained(saved)


def test_unknown_model_type(saved: Path) -> None:
    cfg = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**cfg, "model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="unknown model_type 'gpt2'; supported: albert, bert"):
        Encoder.from_pretrained(saved)


def test_missing_weights(saved: Path) -> None:
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"has no model\.safetensors or pytorch_model\.bin"):
        Encoder.from_pretrained(saved)


def test_truncated_weights(saved: Path) -> None:
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors' is corrupt or truncated"):
        Encoder.from_pretrained(saved)


def test_config_weights_shape_mismatch(saved: Path) -> None:
    cfg = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 48}))
    with pytest.raises(CheckpointError, match=r"intermediate\.dense\.weight' has shape \(64, 32\)"):
        Encoder.from_pretrained(saved)


def test_invalid_config_values_name_the_file(saved: Path) -> None:
    cfg = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**cfg, "num_attention_heads": 5}))
    with pytest.raises(CheckpointError, match=r"config\.json.*not divisible"):
        Encoder.from_pretrained(saved)


def test_missing_tensor(saved: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(saved / "model.safetensors")
    del state["encoder.layer.0.output.dense.bias"]
    save_file(state, saved / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"lacks weights for layers\.0\.ffn\.down\.bias"):
        Encoder.from_pretrained(saved)


def test_no_mlm_head_for_masked_lm(saved: Path) -> None:
    with pytest.raises(CheckpointError, match="no MLM head"):
        PreTrainingModel.from_pretrained(saved)


def test_legacy_bin_is_read_with_weights_only(saved: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    shutil.copy(saved / "config.json", legacy / "config.json")
    state = load_file(saved / "model.safetensors")
    # TF-era names: LayerNorm gamma/beta.
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma"): v for k, v in state.items()}
    torch.save(state, legacy / "pytorch_model.bin")
    Encoder.from_pretrained(legacy)

    marker = tmp_path / "pwned"

    class Evil:  # unpickling it would run a shell command that creates `marker`
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch '{marker}'",))

    torch.save({"x": Evil()}, legacy / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"holds Python objects besides tensors.*model\.sa"):
        Encoder.from_pretrained(legacy)
    assert not marker.exists()


def test_ids_out_of_range_are_named() -> None:
    model = Encoder(TINY).eval()
    ok = torch.tensor([[1, 2, 3]])
    with pytest.raises(DataError, match=r"input_ids out of range: values span \[1, 100\]"):
        model(torch.tensor([[1, 2, 100]]))
    with pytest.raises(DataError, match="token_type_ids out of range"):
        model(ok, token_type_ids=torch.tensor([[0, 1, 2]]))
    with pytest.raises(DataError, match="position_ids out of range"):
        model(torch.ones(1, 17, dtype=torch.long))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "not divisible by num_attention_heads=4"),
        ({"hidden_act": "gelu_fast"}, "unknown hidden_act 'gelu_fast'"),
        ({"num_hidden_layers": 0}, "'num_hidden_layers' must be a positive integer"),
        ({"hidden_dropout_prob": 1.5}, r"hidden_dropout_prob must be in \[0, 1\)"),
        ({"pad_token_id": 100}, "pad_token_id=100 is outside the vocabulary"),
        ({"position": "alibi"}, "unknown position 'alibi'; choose one of absolute"),
    ],
)
def test_config_validation(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TINY.replace(**changes)


def test_presets_and_unknown_keys() -> None:
    mini = FAMILIES["bert"].config("mini")
    assert (mini.num_hidden_layers, mini.hidden_size, mini.num_attention_heads) == (4, 256, 4)
    large = FAMILIES["bert"].config("large", vocab_size=32000)
    assert (large.num_hidden_layers, large.hidden_size, large.vocab_size) == (24, 1024, 32000)
    with pytest.raises(ConfigError, match="unknown preset 'huge' for bert"):
        FAMILIES["bert"].config("huge")
    with pytest.raises(ConfigError, match=r"unknown key.*hiden_size"):
        EncoderConfig.from_dict({"hiden_size": 128})
    with pytest.raises(ConfigError, match="tokenizer has 200 tokens"):
        TINY.check_vocab(200, "tok")
