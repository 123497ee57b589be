"""Training checkpoints: written atomically (temp dir + rename), newest K kept, exact resume.

A checkpoint directory `RUN_DIR/checkpoints/step-00000100/` holds:
- `model.safetensors`: parameters in bertforge's own names;
- `state.pt`: optimizer, scheduler and torch RNG states (read back with `weights_only=True`);
- `trainer.json`: step, sampler position, Python/numpy RNG states, the metrics so far, and
  the byte size and sha256 of the two files above (written last).
It appears under its final name only once complete, so a crash never leaves a torn one: a
process killed mid-save leaves a `.tmp-step-*` directory, which the next run removes
(`remove_partial`). A checkpoint whose files no longer have their recorded sizes (truncated,
e.g. by a copy) is skipped for the next older one; one whose bytes changed fails its sha256
check when loaded, with an error naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bertforge.errors import CheckpointError

log = logging.getLogger(__name__)

FILES = ("model.safetensors", "state.pt", "trainer.json")
CHECKED = FILES[:2]  # trainer.json records their sizes and digests


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


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


def _tensors(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as safetensors takes it: a tensor reachable under two names (ELECTRA's
    shared embeddings) is written twice, since the format refuses shared memory; loading
    copies the same values into it twice."""
    seen: set[int] = set()
    out = {}
    for key, value in weights.items():
        ptr = value.untyped_storage().data_ptr()
        out[key] = value.detach().clone() if ptr in seen else value.detach().contiguous()
        seen.add(ptr)
    return out


def _write(
    tmp: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer: dict[str, Any],
) -> None:
    save_file(_tensors(weights), str(tmp / "model.safetensors"))
    torch.save(
        {
            "optimizer": optimizer_state,
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        tmp / "state.pt",
    )
    files = {n: {"bytes": (tmp / n).stat().st_size, "sha256": _digest(tmp / n)} for n in CHECKED}
    (tmp / "trainer.json").write_text(
        json.dumps({"step": step, **trainer, "rng": rng_state(), "files": files}),
        encoding="utf-8",
    )
    for name in FILES:
        _fsync(tmp / name)


def save_checkpoint(
    run_dir: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write the model's `weights` and the optimizer's state dict (as one process holds them:
    `distributed.full_state`) with the scheduler and `trainer` (loader state, metrics)."""
    root = run_dir / "checkpoints"
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write(tmp, step, weights, optimizer_state, scheduler, trainer)
    except (OSError, SafetensorError) as e:  # disk full, a file size limit
        shutil.rmtree(tmp, ignore_errors=True)  # leave nothing half-written
        reason = getattr(e, "strerror", None) or e
        raise CheckpointError(
            f"could not write the step-{step} checkpoint in '{root}': {reason}; the older "
            "checkpoints are intact: free space and continue with --resume"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():  # re-saving the same step (e.g. after a resume): replace it whole
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync(root)
    for old in sorted(root.glob("step-*"))[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    log.info("saved checkpoint %s", final)
    return final


def remove_partial(run_dir: Path) -> None:
    """Remove the temporary directories of saves that were killed before their rename."""
    partial = list((run_dir / "checkpoints").glob(".tmp-step-*"))
    for path in partial:
        shutil.rmtree(path, ignore_errors=True)
    if partial:
        log.warning("removed %d partial checkpoint(s) of an interrupted save", len(partial))


def _valid(path: Path) -> bool:
    if not all((path / f).is_file() for f in FILES):
        return False
    try:
        trainer = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    recorded = trainer.get("files")
    return isinstance(recorded, dict) and all(
        (path / n).stat().st_size == f["bytes"] for n, f in recorded.items()
    )


def _verify(path: Path, trainer: dict[str, Any]) -> None:
    for name, recorded in trainer["files"].items():
        if _digest(path / name) != recorded["sha256"]:
            raise CheckpointError(
                f"'{path / name}' is corrupt: its sha256 differs from the one recorded when "
                "it was saved; delete this checkpoint to resume from the one before it"
            )


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
    path: Path, scheduler: torch.optim.lr_scheduler.LRScheduler
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Check the files, restore the scheduler and the RNGs in place, and return the weights,
    the optimizer state dict (for `distributed.load_full_state`) and the trainer dict (step,
    sampler, metrics)."""
    trainer = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
    _verify(path, trainer)
    weights = load_model_state(path)
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    set_rng_state(trainer.pop("rng"))
    trainer.pop("files")
    return weights, state["optimizer"], trainer
