"""The sentence-transformers layout both ways: bertforge pools a sentence-transformers
checkpoint (the packaged all-MiniLM-L6-v2: mean, normalised, 256 tokens) as
`SentenceTransformer.encode` does; what bertforge writes loads in `SentenceTransformer` with
the same vectors; pooling it cannot reproduce is refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import save_mlm_checkpoint

from bertforge import Tokenizer
from bertforge.architectures.embedding import EmbeddingModel
from bertforge.cli.main import app
from bertforge.errors import CheckpointError
from bertforge.interop.sentence_transformers import (
    Pooling,
    read_pooling,
    write_sentence_transformers,
)
from bertforge.tokenization import train_tokenizer

st = pytest.importorskip("sentence_transformers")

TEXTS = ["A man is playing a guitar.", "Paris is the capital of France.", "short",
         "a much longer sentence " * 40]  # fmt: skip


def run_embed(tmp_path: Path, model: Path, *flags: str) -> np.ndarray:
    from typer.testing import CliRunner

    lines = tmp_path / "texts.txt"
    lines.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    result = CliRunner().invoke(app, ["embed", str(lines), "--model", str(model), "-o", str(out),
                                      *flags])  # fmt: skip
    assert result.exit_code == 0, result.output
    return np.load(out)


def test_a_sentence_transformers_checkpoint_embeds_as_it_declares(
    tmp_path: Path, minilm_path: Path
) -> None:
    assert read_pooling(minilm_path) == Pooling("mean", True, 256)
    want = st.SentenceTransformer(str(minilm_path), device="cpu").encode(TEXTS)
    got = run_embed(tmp_path, minilm_path)
    np.testing.assert_allclose(got, want, atol=1e-5)
    raw = run_embed(tmp_path, minilm_path, "--no-normalize", "--pooling", "cls")
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_a_checkpoint_that_sentence_transformers_6_saved_embeds_as_it_declares(
    tmp_path: Path, minilm_path: Path
) -> None:
    """sentence-transformers >= 6 saves new module names, `pooling_mode` as a name and the
    length as the tokenizer's model_max_length: the same vectors from bertforge."""
    loaded = st.SentenceTransformer(str(minilm_path), device="cpu")
    loaded.save(str(tmp_path / "saved"))
    modules = json.loads((tmp_path / "saved" / "modules.json").read_text())
    assert modules[1]["type"] != "sentence_transformers.models.Pooling"
    assert read_pooling(tmp_path / "saved") == Pooling("mean", True, None)
    got = run_embed(tmp_path, tmp_path / "saved")
    np.testing.assert_allclose(got, loaded.encode(TEXTS), atol=1e-5)
    model = EmbeddingModel.from_pretrained(tmp_path / "saved")
    assert model.pooling.mode == "mean" and model.pooling.normalize


@pytest.mark.parametrize("pooling", [Pooling("cls", False, 64), Pooling("mean", True, None)])
def test_what_bertforge_writes_loads_in_sentence_transformers(
    tmp_path: Path, corpus: Path, pooling: Pooling
) -> None:
    tokenizer = train_tokenizer([corpus], "wordpiece", 600)
    model = save_mlm_checkpoint("bert", tokenizer, tmp_path / "model")
    write_sentence_transformers(model, pooling, hidden_size=32)
    assert read_pooling(model) == pooling
    loaded = st.SentenceTransformer(str(model), device="cpu")
    np.testing.assert_allclose(run_embed(tmp_path, model), loaded.encode(TEXTS), atol=1e-5)


MODULES = [
    {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"1_Pooling/config.json": {"pooling_mode_max_tokens": True}}, "pools by max"),
        ({"1_Pooling/config.json": {"pooling_mode": "lasttoken"}}, "pools by lasttoken"),
        ({"1_Pooling/config.json": {"pooling_mode": ["cls", "mean"]}}, "pools by cls \\+ mean"),
        ({"modules.json": MODULES}, "has module 'sentence_transformers.models.Dense'"),
    ],
)
def test_pooling_it_cannot_reproduce_is_refused(
    tmp_path: Path, minilm_path: Path, change: dict, message: str
) -> None:
    for name in ("modules.json", "1_Pooling/config.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(minilm_path / name, tmp_path / name)
    for name, value in change.items():
        (tmp_path / name).write_text(json.dumps(value), encoding="utf-8")
    with pytest.raises(CheckpointError, match=message):
        read_pooling(tmp_path)


def test_the_embedding_model_loads_and_saves_the_layout(tmp_path: Path, minilm_path: Path) -> None:
    """`EmbeddingModel` (what `finetune embed` trains) pools MiniLM as declared, and its save
    is a checkpoint SentenceTransformer loads with the same vectors."""
    model = EmbeddingModel.from_pretrained(minilm_path).eval()
    assert model.pooling == Pooling("mean", True, 256)
    tok = Tokenizer.from_pretrained(minilm_path)
    batch = tok(TEXTS, max_length=256, truncation=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    want = st.SentenceTransformer(str(minilm_path), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(ours.numpy(), want, atol=1e-5)
    model.save_pretrained(tmp_path / "saved")
    tok.save_pretrained(tmp_path / "saved")
    again = st.SentenceTransformer(str(tmp_path / "saved"), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(again, want, atol=1e-5)
