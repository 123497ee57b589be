"""A run as a cluster job sees it, with real processes: SIGTERM stops it with a checkpoint and
exit code 75, `--resume` then continues as if nothing happened; a resume with other settings
says what changed; a run directory holds one live run at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_pretrain import RECIPE, data_dir  # noqa: F401 (data_dir is a fixture)

from bertforge import EXIT_STOPPED, ConfigError, pretrain
from bertforge.pretraining.recipe import load_recipe
from bertforge.training.checkpoint import latest_checkpoint

REPO = Path(__file__).resolve().parents[2]
LONG = [*RECIPE, "train.max_steps=24", "train.save_every=1000", "train.eval_every=1000"]


def start(data: Path, run: Path, sets: list[str], *extra: str) -> subprocess.Popen[str]:
    """`python -m bertforge pretrain ...` in the background."""
    args = [arg for item in sets for arg in ("--set", item)]
    cmd = [sys.executable, "-m", "bertforge", "pretrain", "--data", str(data), "-o", str(run)]
    return subprocess.Popen(
        [*cmd, *args, *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def train_steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["step"] for r in records if r["split"] == "train"]


def wait_for_step(process: subprocess.Popen[str], run: Path, step: int) -> None:
    deadline = time.monotonic() + 120
    while max(train_steps(run), default=0) < step:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run did not reach the step in time"
        time.sleep(0.05)


def train_losses(run: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["split"] == "train"]


def test_sigterm_checkpoints_exits_75_and_resume_matches_a_straight_run(
    data_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = tmp_path / "stopped"
    child = start(data_dir, run, LONG)
    wait_for_step(child, run, 5)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == EXIT_STOPPED == 75, err[-2000:]
    stopped = max(train_steps(run))
    assert 5 <= stopped < 24
    assert f"stopped at step {stopped} on SIGTERM" in err.strip().splitlines()[-1]
    assert latest_checkpoint(run).name == f"step-{stopped:08d}"  # none before: save_every 1000
    recipe = load_recipe(None, LONG)
    pretrain(data_dir, run, recipe, resume=True)
    pretrain(data_dir, tmp_path / "straight", recipe)
    assert train_losses(run) == train_losses(tmp_path / "straight")


def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    code = """
import time
from bertforge.training.stopping import GracefulStop
with GracefulStop() as stop:
    print("ready", flush=True)
    while True:
        time.sleep(0.01)
        if stop.requested:
            print("requested", stop.requested, flush=True)
            time.sleep(60)
"""
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    assert child.stdout.readline().strip() == "requested SIGTERM"
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGTERM


def test_resume_with_other_settings_lists_them_and_needs_allow_changes(
    data_dir: Path,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = tmp_path / "run"
    recipe = load_recipe(None, [*RECIPE, "train.max_steps=6"])
    pretrain(data_dir, run, recipe, stop_at=2)
    with pytest.raises(ConfigError) as refused:
        pretrain(data_dir, run, recipe, resume=True, batch_size=16, lr=5e-3)
    message = str(refused.value)
    assert "train.batch_size: 8 -> 16" in message and "train.lr: 0.001 -> 0.005" in message
    assert "--allow-changes" in message
    result = pretrain(data_dir, run, recipe, resume=True, batch_size=16, allow_changes=True)
    assert result.step == 6 and "train.batch_size: 8 -> 16" in caplog.text
    # Harmless settings (how often to log or save) change without a word of refusal.
    pretrain(data_dir, tmp_path / "other", recipe, stop_at=2)
    pretrain(data_dir, tmp_path / "other", recipe, resume=True, save_every=3)


def test_one_run_per_directory(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    run = tmp_path / "run"
    first = start(data_dir, run, [*LONG, "train.max_steps=400"])
    try:
        wait_for_step(first, run, 2)
        second = start(data_dir, run, LONG)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        lines = err.strip().splitlines()
        assert (
            len(lines) == 1
            and f"'{run}' is in use by another bertforge run (pid {first.pid})" in lines[0]
        )
        wait_for_step(first, run, max(train_steps(run)) + 2)  # the first goes on, undisturbed
        steps = train_steps(run)
        assert steps == list(range(1, len(steps) + 1))
    finally:
        first.kill()  # SIGKILL: the kernel drops its lock
        first.communicate()
    # The killed run's lock is taken over (here by this process, through the API).
    pretrain(data_dir, run, load_recipe(None, [*LONG, "train.max_steps=3"]))
    assert train_steps(run) == [1, 2, 3]  # a fresh run, its own records only
    assert (run / ".lock").read_text().strip() == str(os.getpid())
