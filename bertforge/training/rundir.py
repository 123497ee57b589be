"""A run directory belongs to one run: an exclusive lock for the run's life, and a resume
that says what changed since the checkpoint.

The lock is `fcntl.flock` on `RUN_DIR/.lock`, which holds the owner's pid. The kernel drops it
when the process ends, however it ends, so a run killed with SIGKILL leaves a lock file that
the next run simply takes over; a second live process on the same directory is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bertforge.atomic import write_text
from bertforge.errors import CheckpointError, ConfigError
from bertforge.training.checkpoint import latest_checkpoint
from bertforge.training.distributed import is_main

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
PLAN_FILE = "plan.json"  # what the run is (its resolved settings), compared on resume


class RunDirBusy(ConfigError):
    """Another live process holds the run directory."""


@contextlib.contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` for the block; raise `RunDirBusy` naming the holder if another process
    does. Under torchrun rank 0, the rank that writes the directory, holds it for all."""
    if not is_main():
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise RunDirBusy(
                f"'{run_dir}' is in use by another bertforge run (pid {holder}); wait for it "
                "to end, or pass another --output"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# Settings that may change on resume without changing what the run computes.
HARMLESS = frozenset(
    {
        "train.save_every",
        "train.keep_last",
        "train.eval_every",
        "train.log_every",
        "train.num_workers",
        "train.micro_batch_size",
        "train.parallel",
        "train.stop_at",
        "world_size",
        "micro_batch_size",
        "accumulation",
        "device",
        "report_to",
        "eval_batch_size",
        "eval_every",
        "save_every",
        "stop_at",
        "nproc",
    }
)


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _harmless(key: str) -> bool:
    """Whether a flattened setting ("recipe.train.save_every") is one of `HARMLESS`."""
    return any(key == h or key.endswith("." + h) for h in HARMLESS)


def check_changes(saved: Mapping[str, Any], current: Mapping[str, Any], allow: bool) -> list[str]:
    """Compare a run's saved settings with the resumed run's, and list each difference.
    Differences that break exact resume (batch, learning rate, schedule, data, seed, ...)
    stop the resume unless `allow`; the others are only reported. Returns the differences."""
    # Compared as JSON holds them (a tuple and the list it was saved as are the same).
    before, after = _flat(json.loads(json.dumps(saved))), _flat(json.loads(json.dumps(current)))
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    lines = [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in changed]
    breaking = [line for k, line in zip(changed, lines, strict=True) if not _harmless(k)]
    if breaking and not allow:
        raise ConfigError(
            f"--resume with settings that differ from the checkpoint's run: {'; '.join(breaking)}"
            "; the run would not continue as it started. Resume with the same settings, or "
            "pass --allow-changes to continue with the new ones"
        )
    for line in lines:
        log.warning("resumed with a changed setting: %s", line)
    return lines


def resume_point(
    run_dir: Path, settings: Mapping[str, Any], resume: bool, allow: bool
) -> Path | None:
    """The checkpoint a run continues from (None: it starts fresh). A resume needs one, and
    says what changed against the run's recorded settings; a fresh run must not land on
    another's checkpoints."""
    checkpoint = latest_checkpoint(run_dir)
    if resume:
        if checkpoint is None:
            raise CheckpointError(f"'{run_dir}' has no complete checkpoint to resume from")
        saved = run_dir / PLAN_FILE
        if saved.is_file():
            check_changes(json.loads(saved.read_text(encoding="utf-8")), settings, allow)
        return checkpoint
    if checkpoint is not None:
        raise ConfigError(f"'{run_dir}' already holds a run; pass --resume or a new --output")
    return None


def record_settings(run_dir: Path, settings: Mapping[str, Any]) -> None:
    write_text(run_dir / PLAN_FILE, json.dumps(settings, indent=2) + "\n")
