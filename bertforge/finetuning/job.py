"""A fine-tuning run on the shared trainer: plan -> task model and strategy -> `Trainer` with
dev evaluation each epoch (and every N steps) -> `best/`.

A run directory holds `task.json`, `plan.json`, `metrics.jsonl` (+ `tensorboard/`),
`dev_metric.png`, `eval_results.json` and `best/` (an HF checkpoint plus tokenizer that
transformers opens), and `checkpoints/` when the run saved any (`save_every`, a stop). Under
torchrun each rank trains its share of every global batch; rank 0 alone evaluates and writes.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertforge.architectures.embedding import EMBEDDING
from bertforge.atomic import write_text
from bertforge.finetuning import frozen
from bertforge.finetuning.batches import EpochBatches
from bertforge.finetuning.inference import BEST_DIR, load_split, predict_rows
from bertforge.finetuning.plan import FinetunePlan
from bertforge.finetuning.report import report_table, warn_single_class
from bertforge.interop.hf import tokenizer_class
from bertforge.models.encoder import encoder_config, set_unpadded
from bertforge.tasks import Split
from bertforge.tokenization import Tokenizer
from bertforge.training import distributed
from bertforge.training.checkpoint import remove_partial
from bertforge.training.embedding_step import EmbeddingStep
from bertforge.training.loggers import RunLog
from bertforge.training.optim import build_optimizer, lr_schedule
from bertforge.training.plots import plot_dev_metric
from bertforge.training.rundir import exclusive, record_settings, resume_point
from bertforge.training.runtime import seed_everything
from bertforge.training.trainer import LoopSettings, Trainer

logger = logging.getLogger(__name__)

RESULTS_FILE = "eval_results.json"


@dataclass
class FinetuneOutcome:
    run_dir: Path
    metrics: dict[str, Any]  # the best dev metrics, with their precision ({} on other ranks)
    step: int
    stopped: bool  # ended at `stop_at`


class DevEvaluation:
    """Dev metrics at each epoch's end (and every `eval_every` steps); the best checkpoint by
    the task's main metric is kept in RUN_DIR/best."""

    def __init__(
        self,
        plan: FinetunePlan,
        model: nn.Module,
        dev: Split,
        tokenizer: Tokenizer,
        run_dir: Path,
        cache: frozen.EncoderCache | None,
        steps_per_epoch: int,
    ) -> None:
        self.plan, self.model, self.dev, self.tokenizer = plan, model, dev, tokenizer
        self.run_dir, self.cache, self.steps_per_epoch = run_dir, cache, steps_per_epoch
        self.best: dict[str, Any] | None = None
        self.best_classes: dict[str, int] = {}

    def due(self, step: int) -> bool:
        every = self.plan.config.eval_every  # the last step ends an epoch too
        return step % self.steps_per_epoch == 0 or bool(every and step % every == 0)

    def __call__(self, step: int) -> dict[str, Any] | None:
        record = None
        if distributed.is_main():
            plan, setup, cfg = self.plan, self.plan.setup, self.plan.config
            pad_id = self.tokenizer.pad_token_id or 0
            rows = predict_rows(
                plan.task, self.model, self.dev.features, pad_id, cfg.eval_batch_size,
                cfg.precision, self.cache,
            )  # fmt: skip
            metrics = {**plan.task.score(setup, self.dev, rows), "precision": cfg.precision}
            logger.info("step %d dev %s", step, metrics)
            main = setup.main_metric
            if self.best is None or metrics[main] > self.best[main]:
                self.best = metrics
                self.best_classes = dict(plan.task.predicted_classes(setup, self.dev, rows))
                with frozen.real_encoder(self.model, self.cache):
                    self._save_best()
            record = {"split": "dev", **metrics}
        distributed.barrier()
        return record

    def _save_best(self) -> None:
        # Write beside, then swap, so an interrupted save never leaves a half-written best/.
        tmp = self.run_dir / f".{BEST_DIR}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.plan.strategy.save(self.model, tmp)
        config = encoder_config(self.model)
        self.tokenizer.save_pretrained(tmp, tokenizer_class(config, self.tokenizer))
        shutil.rmtree(self.run_dir / BEST_DIR, ignore_errors=True)
        tmp.rename(self.run_dir / BEST_DIR)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_classes": self.best_classes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_classes = state.get("best"), state.get("best_classes", {})


def finetune(
    plan: FinetunePlan, run_dir: Path, *, resume: bool = False, allow_changes: bool = False
) -> FinetuneOutcome:
    """Train, keep the best dev checkpoint in RUN_DIR/best and return its dev metrics."""
    with distributed.process_group(plan.config.device) as device, exclusive(run_dir):
        return _run(plan, run_dir, resume, allow_changes, device)


def _run(
    plan: FinetunePlan, run_dir: Path, resume: bool, allow_changes: bool, device: str
) -> FinetuneOutcome:
    task, strategy, setup, cfg = plan.task, plan.strategy, plan.setup, plan.config
    main, rank, world = distributed.is_main(), distributed.rank(), distributed.world_size()
    # Every rank resumes from the same checkpoint; rank 0 alone says what it replaces.
    checkpoint = resume_point(run_dir, plan.settings(), resume, allow_changes)
    if main and checkpoint is None and (run_dir / BEST_DIR).is_dir():
        logger.warning("'%s' holds a finished run; it is replaced by this one", run_dir)
    seed_everything(cfg.seed)
    tokenizer = Tokenizer.from_pretrained(plan.model_dir)
    pad_id = tokenizer.pad_token_id or 0
    model = strategy.build(task, setup, plan.model_dir, tokenizer)
    set_unpadded(model)  # heads read only real positions, so padding need not be computed
    train = load_split(task, strategy, setup, tokenizer, "train", cfg.max_train_examples, True)
    dev = load_split(task, strategy, setup, tokenizer, "dev", cfg.max_eval_examples, False)
    summary = strategy.prepare(model)
    logger.info("trainable parameters: %s", summary)
    model.to(device).train()
    cache = frozen.install(model, task.cache) if strategy.caches else None
    if cache is not None:
        for name, split in (("train", train), ("dev", dev)):
            cache.fill(name, split.features, pad_id, cfg.eval_batch_size, torch.device(device))
    batches = EpochBatches(
        train.features, cfg.batch_size, cfg.seed, cfg.group_by_length, pad_id,
        task.batch_keys(setup), task.label_dtype(setup), rank=rank, world=world, cache=cache,
    )  # fmt: skip
    total = batches.steps_per_epoch * cfg.epochs
    optimizer = build_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = lr_schedule(optimizer, max(1, int(cfg.warmup_ratio * total)), total)
    evaluation = DevEvaluation(plan, model, dev, tokenizer, run_dir, cache, batches.steps_per_epoch)
    settings = LoopSettings(
        max_steps=total,
        precision=cfg.precision,
        grad_clip=cfg.max_grad_norm,
        log_every=cfg.log_every,
        save_every=cfg.save_every or 0,
        keep_last=1,
        max_bad_steps=cfg.max_bad_steps,
        save_final=False,  # best/ is the result; a finished run needs no resume point
        stop_at=cfg.stop_at,
        steps_per_epoch=batches.steps_per_epoch,
        label="fine-tune",
    )
    # Rank 0 evaluates the unwrapped model alone.
    trained = distributed.wrap_model(model, find_unused=True)
    step = EmbeddingStep(setup.options["chunk_size"]) if task.head == EMBEDDING else None
    trainer = Trainer(
        model, optimizer, schedule, task.objectives(setup), batches, settings, run_dir,
        trained=trained, evaluation=evaluation, step=step,
    )  # fmt: skip
    step = trainer.resume(checkpoint) if checkpoint is not None else 0
    if main:
        remove_partial(run_dir)
        setup.save(run_dir)
        record_settings(run_dir, plan.settings())
        trainer.log = RunLog(run_dir, cfg.report_to, resume_step=step if resume else None)
        if not resume:
            rows = len(train.features["input_ids"])
            trainer.log.write({"split": "setup", "step": 0, **summary, "train_rows": rows})
    try:
        result = trainer.fit(step)
        if trainer.log is not None and not result.stopped:
            # Wall time and tokens of this call (from `resumed_from` when it resumed): the
            # loop, dev evaluations and best-checkpoint saves included.
            rate = {"train_seconds": round(result.seconds, 2), "train_tokens": result.tokens}
            rate["tokens_per_s"] = result.tokens / max(result.seconds, 1e-9)
            resumed = {"resumed_from": step} if resume else {}
            trainer.log.write({"split": "summary", "step": result.step, **rate, **resumed})
    finally:
        if trainer.log is not None:
            trainer.log.close()
    if not main:
        return FinetuneOutcome(run_dir, {}, result.step, result.stopped)
    best = evaluation.best or {}
    if not result.stopped:
        logger.info("trained %d steps in %.0fs", result.step, result.seconds)
        write_text(run_dir / RESULTS_FILE, json.dumps(best, indent=2) + "\n")
        plot_dev_metric(run_dir, setup.main_metric)
        report_table(setup, best, summary)
        warn_single_class(setup, Counter(evaluation.best_classes), task.unit)
    return FinetuneOutcome(run_dir, best, result.step, result.stopped)
