"""Data-parallel training across processes started by `torchrun` (torch.distributed + DDP).

`torchrun --nproc-per-node N -m bertforge.cli.main pretrain ...` sets RANK, WORLD_SIZE and
LOCAL_RANK; `process_group` joins the group from them (gloo on CPU, nccl on CUDA with one GPU
per local rank). Without those variables, or with WORLD_SIZE=1, every helper here is a no-op,
so the single-process path runs exactly the code it ran before.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

log = logging.getLogger(__name__)

Number = TypeVar("Number", int, float)


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def rank() -> int:
    return dist.get_rank() if _active() else 0


def is_main() -> bool:
    """Rank 0: the one process that writes metrics, checkpoints and exports."""
    return rank() == 0


def barrier() -> None:
    if _active():
        dist.barrier()


@contextlib.contextmanager
def process_group(device: str) -> Iterator[str]:
    """Join the torchrun process group for the block and yield this rank's device.

    On CUDA each process takes `cuda:LOCAL_RANK`. A group the caller already initialised is
    used as is and left for the caller to destroy.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or _active():
        yield device
        return
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    cuda = torch.device(device).type == "cuda"
    if cuda:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    log.info("rank %d of %d on %s", dist.get_rank(), size, device)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def all_reduce_sum(values: Mapping[str, Number]) -> dict[str, Number]:
    """Sum each value over ranks, keeping ints as ints (counts) and floats as floats.

    float64 on the wire: exact for counts below 2**53, and loss sums lose nothing to fp32.
    """
    if not _active():
        return dict(values)
    # nccl only reduces tensors on the rank's GPU; gloo works on CPU tensors.
    device = torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
    flat = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=device)
    dist.all_reduce(flat)
    return {
        k: round(s) if isinstance(v, int) else s
        for (k, v), s in zip(values.items(), flat.tolist(), strict=True)
    }


def wrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """DDP around `model` when running in a group (it broadcasts rank 0's weights and averages
    gradients in backward); the model itself otherwise."""
    if not _active():
        return model
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def gradient_sync(model: torch.nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """`model.no_sync()` unless `sync`: under gradient accumulation only the last micro-batch's
    backward needs the (costly) all-reduce; the earlier ones accumulate locally."""
    if sync or not isinstance(model, DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()
