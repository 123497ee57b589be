"""Crash safety with real processes and signals: SIGKILL in the middle of a checkpoint save,
a data build and an ONNX export, and writes that hit a file size limit (RLIMIT_FSIZE, what a
full disk looks like to the writer). The previous state stays valid, the next run cleans up,
and no partial file is ever left where a reader would load it.

Each child runs the real CLI after a few lines of set-up: a patch that kills the process at
the worst moment (after some bytes of the file are out, before the rename), or the limit.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_pretrain import RECIPE, data_dir  # noqa: F401 (data_dir is a fixture)

from bertforge import pretrain
from bertforge.data.builder import build_data
from bertforge.data.shards import ShardedDataset
from bertforge.errors import DataError
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer
from bertforge.training.checkpoint import latest_checkpoint

REPO = Path(__file__).resolve().parents[2]
# Patches run in the child before the command (`python -m bertforge ...`). `die()` kills it
# as the power cut would.
PRELUDE = """
import os, resource, signal, sys
def die():
    os.kill(os.getpid(), signal.SIGKILL)
def limit_file_size(nbytes):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
"""
KILL_IN_CHECKPOINT = """
from bertforge.training import checkpoint
real_save = checkpoint.save_file
def save_file(tensors, filename, *args, **kwargs):
    real_save(tensors, filename, *args, **kwargs)
    if "step-00000004" in filename:
        os.truncate(filename, os.path.getsize(filename) // 2)  # half of it reached the disk
        die()
checkpoint.save_file = save_file
"""
KILL_BEFORE_MANIFEST = """
from bertforge.data import builder
builder.write_manifest = lambda *args: die()  # every shard written, the manifest not yet
"""
KILL_IN_EXPORT = """
import onnx
onnx.checker.check_model = lambda path, *args, **kwargs: die()  # the file written, not renamed
"""
SMALL_RECIPE = [*RECIPE, "train.max_steps=6", "train.save_every=2", "train.eval_every=100"]


def run_cli(setup: str, args: list[str | Path]) -> subprocess.CompletedProcess[str]:
    code = PRELUDE + setup + "\nimport runpy\nrunpy.run_module('bertforge', run_name='__main__')\n"
    cmd = [sys.executable, "-c", code, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)


def pretrain_args(data: Path, run: Path) -> list[str | Path]:
    sets = [arg for item in SMALL_RECIPE for arg in ("--set", item)]
    return ["pretrain", "--data", data, "--output", run, *sets]


def test_killed_checkpoint_save_leaves_the_last_one_and_resume_cleans_up(
    data_dir: Path,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = tmp_path / "run"
    result = run_cli(KILL_IN_CHECKPOINT, pretrain_args(data_dir, run))
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert latest_checkpoint(run).name == "step-00000002"
    assert len(list((run / "checkpoints").glob(".tmp-step-00000004-*"))) == 1
    with caplog.at_level(logging.WARNING):
        pretrain(data_dir, run, load_recipe(None, SMALL_RECIPE), resume=True)
    assert "removed 1 partial checkpoint" in caplog.text
    assert latest_checkpoint(run).name == "step-00000006"
    assert not list((run / "checkpoints").glob(".tmp-*")) and (run / "hf").is_dir()


def test_killed_build_reads_as_incomplete_and_the_next_build_replaces_it(
    minilm_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("One sentence here. Another one there.\n\n" * 200, encoding="utf-8")
    out = tmp_path / "data"
    args = ["build-data", "--tokenizer", minilm_path, "--input", corpus, "--output", out]
    result = run_cli(KILL_BEFORE_MANIFEST, args)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert list(out.glob("tokens-*")), "the child died before writing any shard"
    with pytest.raises(DataError, match="incomplete"):
        ShardedDataset(out, "train")
    with caplog.at_level(logging.WARNING):
        build_data(Tokenizer.from_pretrained(minilm_path), [corpus], out)
    assert "of an incomplete build" in caplog.text
    assert len(ShardedDataset(out, "train")) > 0


@pytest.fixture()
def small_model(tmp_path: Path) -> Path:
    """A tiny random BERT to export: the crash points are the same for any size."""
    from tiny import hf_model

    hf_model("bert").save_pretrained(tmp_path / "small")
    return tmp_path / "small"


def test_killed_export_keeps_the_previous_file(
    small_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the export that dies runs in a process of its own; the ones before and after run
    here, through the same function the command calls."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from bertforge.onnx_export import OnnxModel, export_onnx

    out = tmp_path / "model.onnx"
    export_onnx(small_model, "embed", out)
    before = out.read_bytes()
    args = ["export", "onnx", "--model", small_model, "--task", "embed", "--normalize"]
    result = run_cli(KILL_IN_EXPORT, [*args, "--output", out])
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert out.read_bytes() == before  # the old export, whole
    assert len(list(tmp_path.glob(".model.onnx.*.tmp"))) == 1
    with caplog.at_level(logging.WARNING):
        export_onnx(small_model, "embed", out)
    assert "removed 1 partial file(s) of an interrupted export" in caplog.text
    assert not list(tmp_path.glob(".model.onnx.*.tmp"))
    OnnxModel(out)  # loads


@pytest.mark.parametrize("job", ["checkpoint", "build-data", "export"])
def test_file_size_limit_gives_a_clear_error_and_no_loadable_file(
    job: str,
    data_dir: Path,  # noqa: F811
    minilm_path: Path,
    small_model: Path,
    tmp_path: Path,
) -> None:
    """Writes fail part-way (EFBIG, as ENOSPC would): one line naming what could not be
    written, exit code 2, and nothing left that a later run would read as complete."""
    out = tmp_path / "out"
    limit = 64 * 1024  # bytes per file
    if job == "checkpoint":
        args = pretrain_args(data_dir, out)
        limit = 2 * 2**20  # the run's tokenizer copy fits, the tiny model's 15 MB do not
    elif job == "build-data":
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("One sentence here. Another one there.\n\n" * 20_000, encoding="utf-8")
        args = ["build-data", "--tokenizer", minilm_path, "--input", corpus, "--output", out]
    else:
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
        args = ["export", "onnx", "--model", small_model, "--task", "embed", "-o", out / "m.onnx"]
    result = run_cli(f"limit_file_size({limit})", args)
    assert result.returncode == 2, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "File too large" in error, error
    if job == "checkpoint":
        assert latest_checkpoint(out) is None and not list(out.glob("checkpoints/.tmp-*"))
    elif job == "build-data":
        with pytest.raises(DataError, match="incomplete"):
            ShardedDataset(out, "train")
    else:
        assert not (out / "m.onnx").exists() and not list(out.glob(".m.onnx.*"))
