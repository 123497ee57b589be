"""One training skeleton for pretraining, distillation and fine-tuning.

    for each step: next global batch -> train_step (micro-batches, global-count losses,
    clipping) -> non-finite policy -> schedule -> log -> evaluate -> checkpoint -> stop?

What differs between jobs is handed in as components: the batches (a resumable iterator of
global batches, as micro-batch lists), the objectives, the step (`train_step`, or an
embedding run's batch-wide loss), an `Evaluation` (pretraining's held-out
objectives, fine-tuning's dev metrics and best checkpoint) and the `RunLog`.

Policies every job shares:
- a step whose loss or gradient norm is not finite changes nothing: no optimizer step, no
  schedule step, the step count stays; `max_bad_steps` such steps in a row abort the run
  (`TrainingAborted`), keeping the last good checkpoint;
- checkpoints hold model, optimizer, scheduler, RNGs, the batches' position and the
  evaluation's state, so `resume` continues exactly (same losses, same weights);
- SIGTERM/SIGINT finish the step, write a checkpoint and raise `TrainingStopped`
  (`stopping.py`); `stop_at` ends early at a step with a checkpoint, the schedule unchanged.

Under torchrun every rank runs this loop on its share of each global batch; rank 0 alone logs
and writes checkpoints.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from bertforge.errors import BertforgeError
from bertforge.objectives import Objective
from bertforge.progress import progress_bar
from bertforge.training import distributed
from bertforge.training.checkpoint import load_checkpoint, save_checkpoint
from bertforge.training.loggers import RunLog
from bertforge.training.step import Batch, StepStats, train_step
from bertforge.training.stopping import GracefulStop, TrainingStopped

log = logging.getLogger(__name__)


class TrainingAborted(BertforgeError):
    """Too many consecutive non-finite steps; the last good checkpoint is kept."""


@dataclass(frozen=True)
class LoopSettings:
    max_steps: int  # optimizer steps the schedule runs to
    precision: str  # fp32 | bf16 (autocast)
    grad_clip: float  # max global gradient norm; 0: measured, not clipped
    log_every: int = 10
    save_every: int = 0  # steps between checkpoints; 0: only when stopping (and at the end)
    keep_last: int = 3
    max_bad_steps: int = 5  # consecutive non-finite steps before aborting
    save_final: bool = True  # a checkpoint at max_steps (pretraining exports from it)
    stop_at: int | None = None  # end at this step with a checkpoint, as a preempted job would
    steps_per_epoch: int | None = None  # adds `epoch` to the logged records
    label: str = "train"  # the progress bar's name for the job


class Batches(Protocol):
    """Global batches, each a list of micro-batches (this rank's share), resumable."""

    def __iter__(self) -> Iterator[list[Batch]]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class StepFn(Protocol):
    """One optimisation step over a global batch: `step.train_step`, or a step of its own
    (an embedding run's batch-wide loss, `embedding_step.py`)."""

    def __call__(
        self,
        model: nn.Module,
        micro_batches: list[Batch],
        optimizer: torch.optim.Optimizer,
        objectives: Sequence[Objective],
        *,
        precision: str,
        grad_clip: float,
    ) -> tuple[StepStats, float]: ...


class Evaluation(Protocol):
    """A job's evaluation: when it is due, what it logs, and what a checkpoint keeps of it."""

    def due(self, step: int) -> bool: ...
    def __call__(self, step: int) -> dict[str, Any] | None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    step: int  # the last optimizer step taken
    tokens: int  # real tokens trained on in this call (every rank)
    seconds: float  # wall time of this call: steps, evaluations and saves
    checkpoint: Path | None  # the last checkpoint written (rank 0)
    stopped: bool  # ended at `stop_at`, before `max_steps`


class Trainer:
    """Runs `settings.max_steps` optimizer steps of `objectives` on `batches`.

    `model` is the module whose weights are checkpointed; `trained` the one stepped (the same,
    or its DDP/FSDP wrapper)."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        objectives: Sequence[Objective],
        batches: Batches,
        settings: LoopSettings,
        run_dir: Path,
        *,
        trained: nn.Module | None = None,
        log: RunLog | None = None,
        evaluation: Evaluation | None = None,
        step: StepFn | None = None,
    ) -> None:
        self.model, self.trained = model, trained if trained is not None else model
        self.step = step if step is not None else train_step  # looked up now, not at import
        self.optimizer, self.scheduler = optimizer, scheduler
        self.objectives, self.batches, self.settings = list(objectives), batches, settings
        self.run_dir, self.log, self.evaluation = run_dir, log, evaluation
        self.main = distributed.is_main()
        self.last_checkpoint: Path | None = None

    def resume(self, checkpoint: Path) -> int:
        """Restore everything a checkpoint holds; returns its step."""
        weights, optimizer_state, state = load_checkpoint(checkpoint, self.scheduler)
        distributed.load_full_state(self.model, self.optimizer, weights, optimizer_state)
        self.batches.load_state_dict(state["batches"])
        if self.evaluation is not None:
            self.evaluation.load_state_dict(state.get("evaluation", {}))
        log.info("resumed from %s at step %d", checkpoint, state["step"])
        return int(state["step"])

    def save(self, step: int) -> Path | None:
        """A checkpoint of `step` (a collective under FSDP; rank 0 writes it)."""
        weights, optimizer_state = distributed.full_state(self.model, self.optimizer)
        if self.main:
            state = {"batches": self.batches.state_dict()}
            if self.evaluation is not None:
                state["evaluation"] = self.evaluation.state_dict()
            self.last_checkpoint = save_checkpoint(
                self.run_dir,
                step,
                weights,
                optimizer_state,
                self.scheduler,
                state,
                self.settings.keep_last,
            )
        distributed.barrier()  # no rank moves on (or exits) before the checkpoint is complete
        return self.last_checkpoint

    def fit(self, step: int = 0) -> TrainResult:
        """Train from `step` to `max_steps` (or `stop_at`)."""
        cfg = self.settings
        start_step, started, tokens = step, time.perf_counter(), 0
        batches = iter(self.batches)
        with GracefulStop() as stop, progress_bar(unit="steps", disable=not self.main) as bar:
            task = bar.add_task(cfg.label, total=cfg.max_steps, completed=step, tokens=0)
            bad = 0
            if step == cfg.max_steps == 0:  # nothing to train: evaluate and keep the start
                self._evaluate(step)
                if cfg.save_final:
                    self.save(step)
            while step < cfg.max_steps:
                stats, norm = self.step(
                    self.trained,
                    next(batches),
                    self.optimizer,
                    self.objectives,
                    precision=cfg.precision,
                    grad_clip=cfg.grad_clip,
                )
                rates = stats.rates(self.objectives)
                saved = False
                if math.isfinite(norm) and math.isfinite(rates["loss"]):
                    bad = 0
                    self.scheduler.step()
                    step += 1
                    tokens += stats.tokens
                    bar.update(task, advance=1, tokens=tokens, description=_summary(rates))
                    if step % cfg.log_every == 0 or step == cfg.max_steps:
                        elapsed = max(time.perf_counter() - started, 1e-9)
                        self._write(
                            step,
                            "train",
                            {
                                **rates,
                                "lr": self.scheduler.get_last_lr()[0],
                                "grad_norm": norm,
                                "tokens_per_s": tokens / elapsed,
                                "steps_per_s": (step - start_step) / elapsed,
                            },
                        )
                    self._evaluate(step)
                    if (
                        (cfg.save_every and step % cfg.save_every == 0)
                        or step == cfg.stop_at
                        or (cfg.save_final and step == cfg.max_steps)
                    ):
                        self.save(step)
                        saved = True
                else:
                    bad += 1
                    log.warning("step %d: non-finite loss/gradient, update skipped", step + 1)
                    if bad >= cfg.max_bad_steps:
                        raise TrainingAborted(
                            f"{bad} non-finite steps in a row at step {step + 1}; lower the "
                            f"learning rate; the last good checkpoint is kept in {self.run_dir}"
                        )
                if self._stop_requested(stop):
                    if not saved:
                        self.save(step)
                    self._stop(step, stop)
                if saved and step == cfg.stop_at and step < cfg.max_steps:
                    return self._result(step, tokens, started, stopped=True)
        return self._result(step, tokens, started, stopped=False)

    def _evaluate(self, step: int) -> None:
        if self.evaluation is not None and self.evaluation.due(step):
            record = self.evaluation(step)
            if record is not None:
                self._write(step, record.pop("split"), record)

    def _stop_requested(self, stop: GracefulStop) -> bool:
        """Whether any rank got a stop signal (ranks must stop at the same step)."""
        if distributed.world_size() == 1:
            return stop.requested is not None
        return bool(distributed.all_reduce_sum({"stop": int(stop.requested is not None)})["stop"])

    def _stop(self, step: int, stop: GracefulStop) -> None:
        name = stop.requested or "a signal to another rank"
        raise TrainingStopped(step, name, self.last_checkpoint)

    def _write(self, step: int, split: str, values: dict[str, Any]) -> None:
        if self.log is None:
            return
        record: dict[str, Any] = {"step": step, "split": split}
        if self.settings.steps_per_epoch:
            record["epoch"] = round(step / self.settings.steps_per_epoch, 3)
        self.log.write({**record, **values})

    def _result(self, step: int, tokens: int, started: float, stopped: bool) -> TrainResult:
        seconds = time.perf_counter() - started
        return TrainResult(step, tokens, seconds, self.last_checkpoint, stopped)


def _summary(rates: dict[str, float]) -> str:
    """The progress bar's description: the loss and each objective's accuracy."""
    accs = " ".join(
        f"{k.removesuffix('_acc')} {v:.3f}" for k, v in rates.items() if k.endswith("_acc")
    )
    return f"loss {rates['loss']:.3f} {accs}".strip()
