"""Data-parallel training across processes started by `torchrun` (torch.distributed).

`torchrun --nproc-per-node N -m bertforge pretrain ...` sets RANK, WORLD_SIZE and LOCAL_RANK;
`process_group` joins the group from them (gloo on CPU, nccl on CUDA with one GPU per local
rank). Without those variables, or with WORLD_SIZE=1, every helper here is a no-op, so the
single-process path runs exactly the code it ran before.

Two ways to hold the model: DDP (every rank a full copy; gradients all-reduced) or FSDP2
(`fully_shard` on each block and on the whole: parameters, gradients and optimizer state
split over the ranks, gathered layer by layer for compute), for models one device cannot
hold with their optimizer state. Checkpoints are the same either way: `full_state` gathers
what one process would hold, `load_full_state` splits it again, so a run resumes on any
number of ranks in either mode.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from bertforge.models.block import BLOCKS

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


def wrap_model(
    model: torch.nn.Module, find_unused: bool = False, shard: bool = False
) -> torch.nn.Module:
    """DDP around `model` when running in a group (it broadcasts rank 0's weights and averages
    gradients in backward); the model itself otherwise. `find_unused`: some trainable
    parameters may get no gradient in a step (a task model's unused pooler), which DDP must
    look for after each forward. `shard`: FSDP2 instead, in place (every rank must hold the
    same weights already; build the optimizer after this)."""
    if not _active():
        return model
    if shard:
        # Imported here: FSDP costs about a second at start-up; only sharded runs need it.
        from torch.distributed.fsdp import fully_shard

        for module in model.modules():
            # One all-gather per block: memory holds one layer.
            if isinstance(module, tuple(BLOCKS.values())):
                fully_shard(module)
        fully_shard(model)
        log.info(
            "FSDP2: parameters, gradients and optimizer state split over %d ranks", world_size()
        )
        return model
    device = next(model.parameters()).device
    return DistributedDataParallel(
        model,
        device_ids=[device] if device.type == "cuda" else None,
        find_unused_parameters=find_unused,
    )


def gradient_sync(model: torch.nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """`model.no_sync()` unless `sync`: under gradient accumulation only the last micro-batch's
    backward needs the (costly) all-reduce; the earlier ones accumulate locally."""
    if is_sharded(model):
        model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if sync or not isinstance(model, DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether `wrap_model` sharded it (no model is, until FSDP has been imported for one)."""
    fsdp = sys.modules.get("torch.distributed.fsdp")
    return fsdp is not None and isinstance(model, fsdp.FSDPModule)


def full_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict]:
    """(weights, optimizer state dict) as one process holds them. Under FSDP they are gathered
    from the shards to rank 0's CPU (every rank must call this; the others get empty dicts);
    the optimizer state keeps torch's own layout (parameters by index), so the checkpoint does
    not depend on the mode."""
    if not is_sharded(model):
        return model.state_dict(), optimizer.state_dict()
    # Imported here: torch.distributed.checkpoint costs a second at start-up, and only FSDP
    # runs need it.
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=options)
    named = get_optimizer_state_dict(model, optimizer, options=options)
    if not named:
        return weights, {}
    index = {name: i for i, name in enumerate(_param_names(model, optimizer))}
    return weights, _rekey(named, index)


def load_full_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict,
) -> None:
    """Load what `full_state` returned (read by every rank from the checkpoint) into a plain
    or DDP model as is, or split over the ranks into an FSDP model."""
    if not is_sharded(model):
        model.load_state_dict(weights)
        optimizer.load_state_dict(optimizer_state)
        return
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True))
    named = _rekey(optimizer_state, dict(enumerate(_param_names(model, optimizer))))
    # strict=False: a parameter that never had a gradient (an unused pooler) has no state.
    options = StateDictOptions(full_state_dict=True, strict=False)
    set_optimizer_state_dict(model, optimizer, named, options=options)


def _rekey(optimizer_state: dict, keys: Mapping) -> dict:
    """An optimizer state dict with its parameters renamed through `keys` (torch's indices to
    the FQNs of torch.distributed.checkpoint, or back)."""
    return {
        "state": {keys[k]: s for k, s in optimizer_state["state"].items()},
        "param_groups": [
            {**g, "params": [keys[k] for k in g["params"]]} for g in optimizer_state["param_groups"]
        ],
    }


def _param_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The optimizer's parameters by name, in its index order."""
    names = {id(p): name for name, p in model.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
