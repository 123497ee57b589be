"""Training checkpoints: written atomically (temp dir + rename), newest K kept, exact resume.

A checkpoint directory `RUN_DIR/checkpoints/step-00000100/` holds:
- `model.safetensors`: parameters in bertforge's own names;
- `state.pt`: optimizer, scheduler and torch RNG states (read back with `weights_only=True`);
- `trainer.json`: step, sampler position, Python/numpy RNG states and the metrics so far.
It appears under its final name only once complete, so a crash never leaves a torn one.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bertforge.errors import CheckpointError

log = logging.getLogger(__name__)

FILES = ("model.safetensors", "state.pt", "trainer.json")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rng_state() -> dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as safetensors takes it: a tensor reachable under two names (ELECTRA's
    shared embeddings) is written twice, since the format refuses shared memory; loading
    copies the same values into it twice."""
    seen: set[int] = set()
    out = {}
    for key, value in model.state_dict().items():
        ptr = value.untyped_storage().data_ptr()
        out[key] = value.detach().clone() if ptr in seen else value.detach().contiguous()
        seen.add(ptr)
    return out


def _write(
    tmp: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer: dict[str, Any],
) -> None:
    save_file(_tensors(model), str(tmp / "model.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        tmp / "state.pt",
    )
    (tmp / "trainer.json").write_text(
        json.dumps({"step": step, **trainer, "rng": rng_state()}), encoding="utf-8"
    )
    for name in FILES:
        _fsync(tmp / name)


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer: dict[str, Any],
    keep_last: int,
) -> Path:
    root = run_dir / "checkpoints"
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write(tmp, step, model, optimizer, scheduler, trainer)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # e.g. disk full: leave nothing half-written
        raise
    if final.exists():  # re-saving the same step (e.g. after a resume): replace it whole
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync(root)
    for old in sorted(root.glob("step-*"))[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    log.info("saved checkpoint %s", final)
    return final


def _valid(path: Path) -> bool:
    if not all((path / f).is_file() for f in FILES):
        return False
    try:
        json.loads((path / "trainer.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return True


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint; incomplete ones are skipped with a warning."""
    for path in sorted((run_dir / "checkpoints").glob("step-*"), reverse=True):
        if _valid(path):
            return path
        log.warning("skipping incomplete checkpoint %s", path)
    return None


def load_model_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path / "model.safetensors")
    except Exception as e:  # safetensors raises several types for a torn file
        raise CheckpointError(f"'{path / 'model.safetensors'}' is unreadable ({e})") from None


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, Any]:
    """Restore everything in place; returns the trainer dict (step, sampler, metrics)."""
    model.load_state_dict(load_model_state(path))
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    trainer = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
    set_rng_state(trainer.pop("rng"))
    return trainer
