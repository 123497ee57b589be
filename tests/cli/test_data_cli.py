"""The data commands: `build-data` and `train-tokenizer`, their output and their one-line
errors (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bertforge.cli.main import app
from bertforge.data.shards import ShardedDataset
from bertforge.tokenization import Tokenizer

runner = CliRunner()


def run(*args: object, code: int = 0) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code == 2:  # one line naming the problem, never a traceback
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stdout + result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    blocks = ["\n".join(doc_lines[i : i + 10]) for i in range(0, 1000, 10)]
    (d / "docs.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return d


def test_cli_builds_and_reports(corpus: Path, minilm_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    args = ("build-data", "--tokenizer", minilm_path, "--input", corpus, "--output", out,
            "--objective", "nsp", "--max-seq-len", 128, "--workers", 2, "--seed", 0)  # fmt: skip
    err = run(*args)
    assert "nsp instances" in err and "MB/s" in err
    ds = ShardedDataset(out)
    assert len(ds) > 100 and ds.manifest["objective"] == "nsp"
    assert "up to date" in run(*args)


def test_cli_bad_inputs_exit_2_with_one_line(
    corpus: Path, minilm_path: Path, tmp_path: Path
) -> None:
    base = ("build-data", "--tokenizer", minilm_path, "--output", tmp_path / "o")
    run(*base, "--input", tmp_path / "missing.txt", code=2)
    run(*base, "--input", corpus, "--objective", "mlm", code=2)
    run(*base, "--input", corpus, "--eval-fraction", 1.5, code=2)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Déjà vu. Encore une fois.\n".encode("latin-1"))
    run(*base, "--input", bad, code=2)
    assert "--skip-bad-utf8" in runner.invoke(app, [str(a) for a in (*base, "--input", bad)]).stderr
    run(*base, "--input", bad, "--skip-bad-utf8", "--objective", "single")
    run(*base, "--input", corpus, code=2)  # other inputs than the build already there
    run("build-data", "--tokenizer", tmp_path, "--input", corpus, "-o", tmp_path / "p", code=2)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--segmenter", "ltp"], "segmenter 'ltp' is unknown"),
        (["--segmenter", "no_such_pkg:cut"], "cannot be loaded"),
        (["--segmenter", "jieba", "--lexicon", "LEXICON"], "is not UTF-8 (line 1"),
        (["--lexicon", "LEXICON"], "pass a segmenter too"),
    ],
)
def test_bad_segmentation_inputs_exit_2(
    extra: list[str], message: str, tmp_path: Path, minilm_path: Path
) -> None:
    text = tmp_path / "zh.txt"
    text.write_text("北京大学。清华大学。\n", encoding="utf-8")
    lexicon = tmp_path / "gbk.txt"
    lexicon.write_bytes("北京大学\n".encode("gbk"))
    args = [str(lexicon) if a == "LEXICON" else a for a in extra]
    err = run("build-data", "--tokenizer", minilm_path, "--input", text, "--output",
              tmp_path / "out", *args, code=2)  # fmt: skip
    assert message in err


def test_train_tokenizer_unigram(corpus: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    err = run("train-tokenizer", "--kind", "unigram", "--vocab-size", "800", "--input", corpus,
              "-o", tmp_path / "tok")  # fmt: skip
    assert "saved unigram tokenizer with 800 tokens" in err
    tok = Tokenizer.from_pretrained(tmp_path / "tok")
    assert tok.kind == "unigram" and tok.vocab_size == 800 and tok.mask_token_id == 4
    assert type(AutoTokenizer.from_pretrained(tmp_path / "tok")).__name__ == "AlbertTokenizer"
