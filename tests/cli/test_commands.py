"""The command line: every serving and inspection command, its happy path and its bad-input
errors (one line, exit code 2). The jobs behind the other commands are tested through the
Python API; tests/cli/ holds the tests of the commands over them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from torch.testing import assert_close
from typer.testing import CliRunner

from bertforge import FAMILIES, EncoderConfig, PreTrainingModel
from bertforge.cli.main import app
from bertforge.tokenization import Tokenizer

runner = CliRunner()


def run(*args: str, input: str | None = None, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, [str(a) for a in args], input=input)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code == 2:
        # One line naming the problem; never a traceback.
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stdout + result.stderr
    return result.stdout, result.stderr


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    """A tiny random BertForMaskedLM with the MiniLM vocabulary, tokenizer saved beside it."""
    d = tmp_path_factory.mktemp("mlm")
    config = EncoderConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    PreTrainingModel(config, heads=("mlm",)).save_pretrained(d)
    Tokenizer.from_pretrained(minilm_path).save_pretrained(d)
    return d


def test_info(minilm_path: Path) -> None:
    out, _ = run("info", minilm_path)
    assert "family" in out and "bert" in out and "22,713,216" in out
    d = json.loads(run("info", minilm_path, "--json")[0])
    assert (d["layers"], d["hidden_size"], d["vocab_size"]) == (6, 384, 30522)
    assert d["parts"] == ["encoder", "pooler"]
    assert d["tokenizer"] == {"kind": "wordpiece", "vocab_size": 30522}


def test_embed_matches_transformers_mean_pooling(minilm_path: Path, tmp_path: Path) -> None:
    texts = ["A man is eating food.", "Der Bär läuft schnell 🐻", "北京是中国的首都", "short"] * 3
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "emb.npy"
    # Unnormalised (MiniLM's own modules normalise: tests/parity/test_sentence_transformers.py)
    run("embed", "--model", minilm_path, "--output", out, "--batch-size", "5", "--no-normalize",
        tmp_path / "in.txt")  # fmt: skip
    got = np.load(out)
    assert got.shape == (12, 384) and got.dtype == np.float32

    tok = transformers.AutoTokenizer.from_pretrained(minilm_path)
    hf = transformers.AutoModel.from_pretrained(minilm_path).eval()
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = hf(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    want = (h * m).sum(1) / m.sum(1)
    assert_close(torch.from_numpy(got), want, atol=1e-5, rtol=1e-5)

    run("embed", "--model", minilm_path, "--output", out, "--pooling", "cls", "-", input="hi\n")
    assert np.load(out).shape == (1, 384)


def test_similarity_ranks_paraphrases_higher(minilm_path: Path) -> None:
    close = float(
        run(
            "similarity",
            "--model",
            minilm_path,
            "A cat sits on the mat.",
            "A kitten is sitting on a rug.",
        )[0]
    )
    far = float(
        run(
            "similarity",
            "--model",
            minilm_path,
            "A cat sits on the mat.",
            "Stock markets fell sharply today.",
        )[0]
    )
    assert -1.0 <= far < close <= 1.0 and close > 0.5


def test_fill_mask(mlm_dir: Path) -> None:
    out, _ = run("fill-mask", "--model", mlm_dir, "--top-k", "3", "paris is the [MASK] of france.")
    assert out.startswith("mask 0:") and len(out.strip().splitlines()) == 4
    lines = run("fill-mask", "--model", mlm_dir, "--json", "[MASK] and [MASK].")[0].splitlines()
    preds = [json.loads(line) for line in lines]
    assert [p["mask"] for p in preds] == [0, 1]
    scores = [x["score"] for x in preds[0]["predictions"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True) and sum(scores) <= 1.0


def test_train_tokenizer(tmp_path: Path) -> None:
    from pydoc_data.topics import topics

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(list(topics.values())[:20]), encoding="utf-8")
    for kind in ("wordpiece", "bpe"):
        out = tmp_path / kind
        run(
            "train-tokenizer",
            "--kind",
            kind,
            "--vocab-size",
            "800",
            "--input",
            corpus,
            "--output",
            out,
        )
        tok = Tokenizer.from_pretrained(out)
        assert tok.kind == kind and tok.vocab_size <= 800
        assert tok.mask_token_id is not None


# --- bad input: each a one-line error with exit code 2 -------------------------------------


def test_missing_model_dir(tmp_path: Path) -> None:
    _, err = run("info", tmp_path / "nope", code=2)
    assert "does not exist" in err


def test_corrupt_weights(mlm_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(mlm_dir, bad)
    (bad / "model.safetensors").write_bytes(b"\x00" * 100)
    _, err = run("fill-mask", "--model", bad, "a [MASK].", code=2)
    assert "model.safetensors' is corrupt" in err


def test_unknown_model_type(mlm_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(mlm_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "t5"}))
    _, err = run("info", bad, code=2)
    assert "unknown model_type 't5'" in err


def test_shape_mismatch(mlm_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(mlm_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "hidden_size": 64}))
    _, err = run("fill-mask", "--model", bad, "a [MASK].", code=2)
    assert "has shape" in err and "config.json implies" in err


def test_tokenizer_larger_than_embeddings(minilm_path: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    config = EncoderConfig(
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    PreTrainingModel(config, heads=("mlm",)).save_pretrained(small)
    _, err = run("fill-mask", "--model", small, "--tokenizer", minilm_path, "a [MASK].", code=2)
    assert "30522 tokens" in err and "only 1000 rows" in err


def test_no_mlm_head(minilm_path: Path) -> None:
    _, err = run("fill-mask", "--model", minilm_path, "a [MASK].", code=2)
    assert "no MLM head" in err


def test_no_mask_token(mlm_dir: Path) -> None:
    _, err = run("fill-mask", "--model", mlm_dir, "nothing to fill", code=2)
    assert "no [MASK] token" in err


def test_missing_tokenizer(tmp_path: Path) -> None:
    d = tmp_path / "m"
    PreTrainingModel(
        FAMILIES["bert"].config("tiny", vocab_size=100), heads=("mlm",)
    ).save_pretrained(d)
    _, err = run("fill-mask", "--model", d, "a [MASK].", code=2)
    assert "--tokenizer" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\n  \n", "is empty"), (b"ok\nbad \xff byte\n", "offset 7")],
    ids=["empty", "blank", "non-utf8"],
)
def test_bad_text_inputs(minilm_path: Path, tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "in.txt"
    f.write_bytes(content)
    _, err = run("embed", "--model", minilm_path, "--output", tmp_path / "o.npy", f, code=2)
    assert message in err and str(f) in err
    _, err = run("train-tokenizer", "--input", f, "--output", tmp_path / "tok", code=2)
    assert str(f) in err


def test_missing_input_file(minilm_path: Path, tmp_path: Path) -> None:
    _, err = run("embed", "--model", minilm_path, "-o", tmp_path / "o.npy", tmp_path / "x", code=2)
    assert "does not exist" in err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "info", str(tmp_path / "nope")])
    assert result.exit_code != 0 and type(result.exception).__name__ == "CheckpointError"


def test_info_shows_an_albert_sharing_one_block(tmp_path: Path) -> None:
    from tiny import hf_model

    hf = hf_model("albert", "ForMaskedLM", num_hidden_groups=1, inner_group_num=1)
    hf.save_pretrained(tmp_path)
    result = runner.invoke(app, ["info", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["family"], info["layers"], info["blocks"], info["embedding_size"]) == (
        "albert", 4, 1, 32,
    )  # fmt: skip
    assert info["parameters"] == sum(p.numel() for p in hf.parameters())  # ties counted once


def test_export_onnx(tmp_path: Path) -> None:
    from tiny import hf_model

    from bertforge.onnx_export import OnnxModel

    model = tmp_path / "small"
    hf_model("bert").save_pretrained(model)
    out = tmp_path / "small.onnx"
    stdout, _ = run("export", "onnx", "--model", model, "--task", "embed", "-o", out,
                    "--normalize")  # fmt: skip
    assert f"exported embed graph to {out}" in stdout
    ids = np.array([[2, 17, 29, 3]])
    vectors = OnnxModel(out)(
        {"input_ids": ids, "attention_mask": ids > 0, "token_type_ids": 0 * ids}
    )
    assert np.allclose(np.linalg.norm(vectors["sentence_embedding"], axis=1), 1.0, atol=1e-5)
    _, err = run("export", "onnx", "--model", model, "--task", "summarize", "-o", out, code=2)
    assert "--task 'summarize'" in err
