"""The tables of a pretraining recipe besides [model], [masking] and [objectives]: [train]
(optimisation and bookkeeping), [data], [generator], [distill] and [init], each a frozen
dataclass whose fields are the TOML keys and whose `__post_init__` checks them (one line per
mistake). `recipe.py` reads them from TOML and `--set`, and writes them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bertforge.errors import ConfigError
from bertforge.models.kernels import BACKENDS
from bertforge.training.optim import SCHEDULES

DOCUMENTS = ("cross", "separate")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping. `batch_size` is the global batch (all ranks, all
    accumulation steps), so a recipe means the same thing on any number of machines."""

    batch_size: int = 256
    micro_batch_size: int = 32  # per forward/backward; accumulation = batch / (micro * ranks)
    max_steps: int = 10_000
    lr: float = 1e-4
    warmup_steps: int = 1000  # a tenth of the default run
    # After warmup: linear decay to 0, or warmup-stable-decay (wsd: the peak, then 1 - sqrt
    # down to 0 over the last `decay_fraction` of the steps).
    schedule: str = "linear"
    decay_fraction: float = 0.1
    optimizer: str = "adamw"  # adamw | lamb
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-6
    grad_clip: float = 1.0  # max global gradient norm; 0: no clipping
    precision: str = "bf16"  # bf16 (autocast) | fp32
    # Under torchrun: ddp (a full model per rank) | fsdp (FSDP2: parameters, gradients and
    # optimizer state sharded over the ranks, for models a device cannot hold with Adam's state)
    parallel: str = "ddp"
    seed: int = 0
    save_every: int = 1000
    keep_last: int = 3
    eval_every: int = 1000
    eval_batches: int = 20
    log_every: int = 10
    num_workers: int = 0
    max_bad_steps: int = 5  # consecutive non-finite losses before aborting
    # Sequence-length warmup: the first `short_seq_fraction` of the steps train on the data's
    # sequences cut to at most `short_seq_len` tokens (`bertforge.data.short`), with as many
    # more sequences per batch as keeps the tokens per step; 0: off.
    short_seq_len: int = 0
    short_seq_fraction: float = 0.0
    # The attention kernel (`models/kernels.py`): sdpa | flex | varlen (both: CUDA, no
    # attention dropout; varlen runs on the unpadded stream with no padding at all).
    attention: str = "sdpa"

    def __post_init__(self) -> None:
        if self.attention not in BACKENDS:
            raise ConfigError(
                f"train.attention={self.attention!r}; choose one of {', '.join(BACKENDS)}"
            )
        if self.optimizer not in ("adamw", "lamb"):
            raise ConfigError(f"train.optimizer={self.optimizer!r}; choose adamw or lamb")
        if self.precision not in ("bf16", "fp32"):
            raise ConfigError(f"train.precision={self.precision!r}; choose bf16 or fp32")
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"train.schedule={self.schedule!r}; choose one of {', '.join(SCHEDULES)}"
            )
        if not 0 < self.decay_fraction <= 1:
            raise ConfigError(
                f"train.decay_fraction={self.decay_fraction} must be in (0, 1]: the share of "
                "the steps a wsd schedule decays over"
            )
        if self.parallel not in ("ddp", "fsdp"):
            raise ConfigError(f"train.parallel={self.parallel!r}; choose ddp or fsdp")
        for name in ("batch_size", "micro_batch_size", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps < 0:  # 0: evaluate and export the starting weights
            raise ConfigError(f"train.max_steps must be at least 0, got {self.max_steps}")
        micro = min(self.micro_batch_size, self.batch_size)  # a larger one shrinks (plan)
        if self.batch_size % micro:
            raise ConfigError(
                f"train.batch_size={self.batch_size} is not a multiple of micro_batch_size="
                f"{self.micro_batch_size}; the global batch is split into equal micro-batches"
            )
        if (self.short_seq_len > 0) != (0 < self.short_seq_fraction < 1):
            raise ConfigError(
                f"train.short_seq_len={self.short_seq_len} with train.short_seq_fraction="
                f"{self.short_seq_fraction}: a short-sequence phase needs both, a length and "
                "a fraction of the steps strictly between 0 and 1"
            )

    @property
    def decay_steps(self) -> int:
        """Steps of a wsd schedule's decay (0 for linear)."""
        return round(self.decay_fraction * self.max_steps) if self.schedule == "wsd" else 0

    @property
    def short_steps(self) -> int:
        """Steps of the short-sequence phase (0 without one)."""
        return round(self.short_seq_fraction * self.max_steps) if self.short_seq_len else 0

    def micro_batch(self, world_size: int) -> int:
        """The micro-batch each of `world_size` ranks runs: the recipe's, or each rank's share
        of the global batch when that is smaller (a recipe's micro-batch is a memory ceiling,
        not a demand)."""
        share, rest = divmod(self.batch_size, world_size)
        if self.micro_batch_size > share > 0 and not rest:
            return share
        return self.micro_batch_size

    def accumulation_per_rank(self, world_size: int) -> int:
        """Micro-batches each of `world_size` ranks runs per step: the global batch is split
        over the ranks first, then each rank's part into micro-batches."""
        micro = self.micro_batch(world_size)
        if self.batch_size % (micro * world_size):
            raise ConfigError(
                f"train.batch_size={self.batch_size} is not divisible by micro_batch_size="
                f"{micro} x {world_size} ranks; every rank needs the same number of equal "
                "micro-batches"
            )
        return self.batch_size // (micro * world_size)


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator of replaced-token detection (objective rtd): its width (hidden size,
    heads, feed-forward) and depth as fractions of the discriminator's, and how the two share
    the token embeddings: "shared" (ELECTRA: one set of tables trained by both losses; best
    at 1/4 to 1/2 the width, the same depth) or "gdes" (DeBERTa-v3: the discriminator reads
    the generator's through a stop-gradient plus a delta of its own; the same width, half
    the depth)."""

    size: float = 0.25
    depth: float = 1.0
    sharing: str = "shared"

    def __post_init__(self) -> None:
        if self.sharing not in ("shared", "gdes"):
            raise ConfigError(
                f"generator.sharing={self.sharing!r}; choose shared (ELECTRA) or gdes "
                "(DeBERTa-v3's gradient-disentangled sharing)"
            )
        if not 0 < self.depth <= 1:
            raise ConfigError(f"generator.depth={self.depth}; use a fraction in (0, 1]")


@dataclass(frozen=True)
class DistillConfig:
    """Distillation (objectives distill_ce / distill_cos): the teacher, an HF directory with
    an MLM head, ours or downloaded; the student takes every `every`-th teacher layer."""

    teacher: str = ""
    temperature: float = 2.0  # softens both distributions; the KL term is scaled by T^2
    every: int = 2
    masked_only: bool = False  # KL over masked positions only (HF: restrict_ce_to_mask)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"distill.temperature={self.temperature}; use a positive value")
        if self.every < 1:
            raise ConfigError(f"distill.every={self.every}; use 1 or more")

    def checked_teacher(self) -> Path:
        if not self.teacher:
            raise ConfigError(
                "distillation needs a teacher: pass --teacher DIR (or set distill.teacher)"
            )
        return Path(self.teacher)


@dataclass(frozen=True)
class DataConfig:
    """How the shards' sequences meet the model. `documents`: in full-sentences packs, whether
    attention crosses the separator between documents (cross, RoBERTa's FULL-SENTENCES) or each
    document attends only to itself with positions counted from its start (separate,
    ModernBERT's packing)."""

    documents: str = "cross"

    def __post_init__(self) -> None:
        if self.documents not in DOCUMENTS:
            raise ConfigError(
                f"data.documents={self.documents!r}; choose one of {', '.join(DOCUMENTS)}"
            )


@dataclass(frozen=True)
class InitConfig:
    """Continued pretraining: start from an HF checkpoint (`pretrain --init`) instead of
    random weights. Its family, encoder config and tokenizer are the run's; `generator` is
    the RTD generator's checkpoint (ELECTRA, DeBERTa-v3; a fresh one of [generator] size
    without it). `carry` is
    written by the run: the checkpoint's heads no objective trains, kept unchanged so that
    export writes the checkpoint's own class back."""

    model: str = ""
    generator: str = ""
    carry: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "carry", tuple(self.carry))
        if self.generator and not self.model:
            raise ConfigError(
                "init.generator is set without init.model: pass the discriminator with --init"
            )
