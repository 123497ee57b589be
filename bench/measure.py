"""Measurement helpers and paths shared by the benchmarks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

# The shared datasets: `$BERTFORGE_SHARED_DATA`, else `../shared/data` beside the repository.
SHARED = Path(
    os.environ.get("BERTFORGE_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
)


def use_threads() -> int:
    """Run torch on `$OMP_NUM_THREADS` threads, else on every core; returns the count."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    return torch.get_num_threads()


def quiet_transformers() -> None:
    """No load reports (the benchmarks put fresh heads on checkpoints) and no progress bars."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def forward_flops_per_token(config: dict, length: float) -> float:
    """Forward FLOPs per token of a BERT encoder (an HF config.json as a dict): the Q/K/V/out
    projections, the feed-forward and attention's scores and values at `length` tokens.
    Training costs 3x this (forward + backward)."""
    h, i = config["hidden_size"], config["intermediate_size"]
    ffn = 3 if config.get("model_type") == "modernbert" else 2  # a GLU's third matrix
    return config["num_hidden_layers"] * (2 * 4 * h * h + 2 * ffn * h * i + 2 * 2 * length * h)


def gemm_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of a square matmul on the current threads: the roof MFU is measured against."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over
    fork + exec)."""
    with open("/proc/self/status") as f:
        hwm = next(line for line in f if line.startswith("VmHWM"))
    return int(hwm.split()[1]) / 1024
