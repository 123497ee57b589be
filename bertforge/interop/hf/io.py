"""Reading and writing the files of an HF checkpoint directory, with checked errors."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bertforge.atomic import atomic_path, write_text
from bertforge.errors import CheckpointError

log = logging.getLogger(__name__)

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PT_BIN = "pytorch_model.bin"


def checkpoint_dir(path: str | Path) -> Path:
    d = Path(path)
    if not d.exists():
        raise CheckpointError(f"checkpoint directory '{d}' does not exist")
    if not d.is_dir():
        raise CheckpointError(f"'{d}' is a file; pass the checkpoint directory that holds it")
    return d


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"'{path}' is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"'{path}' is not valid JSON ({e}); re-export the file") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"'{path}' must hold a JSON object, found {type(data).__name__}")
    return data


def read_config(d: Path) -> dict[str, Any]:
    if not (d / CONFIG).exists():
        raise CheckpointError(
            f"'{d}' has no {CONFIG}; an HF checkpoint directory needs {CONFIG} and "
            f"{SAFETENSORS} (or {PT_BIN})"
        )
    return read_json(d / CONFIG)


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"'{path}' is corrupt or truncated ({e}); re-download or re-save it"
        ) from None


def read_weights(d: Path) -> dict[str, torch.Tensor]:
    """Safetensors (single or sharded) first; legacy `.bin` only through `weights_only=True`."""
    if (d / SAFETENSORS).exists():
        return _load_safetensors(d / SAFETENSORS)
    if (d / SAFETENSORS_INDEX).exists():
        index = read_json(d / SAFETENSORS_INDEX)
        files = sorted(set(index.get("weight_map", {}).values()))
        if not files:
            raise CheckpointError(f"'{d / SAFETENSORS_INDEX}' has an empty weight_map")
        state: dict[str, torch.Tensor] = {}
        for name in files:
            if not (d / name).exists():
                raise CheckpointError(
                    f"shard '{d / name}' listed in {SAFETENSORS_INDEX} is missing"
                )
            state.update(_load_safetensors(d / name))
        return state
    if (d / PT_BIN).exists():
        try:
            state = torch.load(d / PT_BIN, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise CheckpointError(
                f"'{d / PT_BIN}' holds Python objects besides tensors, which could run code "
                f"when unpickled, so it was not loaded; if you trust its source, convert it to "
                f"{SAFETENSORS} (e.g. with transformers' save_pretrained)"
            ) from None
        except Exception as e:  # torch raises many types for a bad pickle/zip
            raise CheckpointError(
                f"'{d / PT_BIN}' could not be read safely ({type(e).__name__}: {e}); "
                f"convert it to {SAFETENSORS}"
            ) from None
        if not isinstance(state, dict):
            raise CheckpointError(f"'{d / PT_BIN}' does not hold a state dict")
        return state
    raise CheckpointError(f"'{d}' has no {SAFETENSORS} or {PT_BIN}; nothing to load weights from")


def write_checkpoint(d: Path, config: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    """Weights first, config last, each atomically: a directory whose config is readable holds
    the weights that config describes. Other files (e.g. a tokenizer) are left in place."""
    d.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(d / SAFETENSORS) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        write_text(d / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")
    except (OSError, SafetensorError) as e:  # disk full, a file size limit
        reason = getattr(e, "strerror", None) or e
        raise CheckpointError(f"could not write the checkpoint in '{d}': {reason}") from None
    log.info("saved %d tensors to %s", len(state), d)
