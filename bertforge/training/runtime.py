"""Run-wide settings shared by pretraining and fine-tuning: seeding and mixed precision."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

PRECISIONS = ("fp32", "bf16")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast (weights and optimizer stay fp32), or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
