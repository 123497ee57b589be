"""The fine-tuning loop: AdamW with warmup/linear decay, dynamic padding, dev evaluation each
epoch (and every N steps), best-checkpoint selection on the task's main metric. Each step is
the step core pretraining uses (`training/step.py`) with the task's objectives.

A run directory holds `task.json`, `metrics.jsonl`, `dev_metric.png`, `eval_results.json` and
`best/` (an HF checkpoint plus tokenizer).

Under torchrun each rank trains on its share of every global batch (DDP all-reduces the
gradients; losses are normalised by the global label counts, as in pretraining), and rank 0
alone evaluates dev, logs and saves.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertforge.atomic import write_text
from bertforge.errors import ConfigError, DataError
from bertforge.interop.hf import tokenizer_class
from bertforge.models.encoder import encoder_config, set_unpadded
from bertforge.progress import progress_bar
from bertforge.tokenization import Tokenizer
from bertforge.training import distributed
from bertforge.training.finetune import frozen
from bertforge.training.finetune import tasks as T
from bertforge.training.finetune.data import batch_order, eval_order, iterate, rank_share
from bertforge.training.finetune.report import plot_dev_metric, report_table
from bertforge.training.finetune.strategy import apply_strategy, load_model, save_model
from bertforge.training.loggers import MetricsFile as MetricsLog
from bertforge.training.optim import adamw, linear_schedule, param_groups
from bertforge.training.runtime import PRECISIONS, autocast, seed_everything
from bertforge.training.step import train_step

logger = logging.getLogger(__name__)

BEST_DIR = "best"
RESULTS_FILE = "eval_results.json"


@dataclass
class FinetuneConfig:
    """Optimisation settings; defaults follow the BERT paper's fine-tuning recipe."""

    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 64
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 42
    group_by_length: bool = False
    precision: str = "fp32"
    eval_every: int | None = None  # steps; dev is always evaluated at each epoch's end too
    log_every: int = 10
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    device: str = "cpu"
    progress: bool = True

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")


def load_split(
    info: T.TaskInfo, tokenizer: Tokenizer, split: str, limit: int | None, train: bool
) -> T.Split:
    examples = info.task.read(info, split)[:limit] if limit else info.task.read(info, split)
    features = info.task.encode(info, tokenizer, examples, train)
    if not features["input_ids"]:
        raise DataError(
            f"the {split} split produced no examples to {'train' if train else 'score'}"
        )
    return T.Split(examples, features)


@torch.no_grad()
def predict_rows(
    info: T.TaskInfo,
    model: nn.Module,
    features: T.Features,
    pad_id: int,
    cfg: FinetuneConfig,
    cache: frozen.EncoderCache | None = None,
) -> list[Any]:
    """Model outputs per feature row (padding removed), in feature order. With `cache`, the
    encoder outputs come from its "dev" split."""
    device = torch.device(cfg.device)
    was_training = model.training
    model.eval()
    lengths = [len(ids) for ids in features["input_ids"]]
    rows: list[Any] = [None] * len(lengths)
    for indices, batch in iterate(features, eval_order(lengths, cfg.eval_batch_size), pad_id):
        batch = {k: v.to(device) for k, v in batch.items()}
        if cache is not None:
            cache.select("dev", indices)
        with autocast(cfg.precision, device):
            output = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        for i, row in zip(
            indices, info.task.to_rows(output, [lengths[i] for i in indices]), strict=True
        ):
            rows[i] = row
    model.train(was_training)
    return rows


def evaluate(
    info: T.TaskInfo,
    model: nn.Module,
    split: T.Split,
    pad_id: int,
    cfg: FinetuneConfig,
    cache: frozen.EncoderCache | None = None,
) -> dict[str, float]:
    rows = predict_rows(info, model, split.features, pad_id, cfg, cache)
    return info.task.score(info, split, rows)


def _save_best(model: nn.Module, info: T.TaskInfo, tokenizer: Tokenizer, run_dir: Path) -> None:
    # Write beside, then swap, so an interrupted save never leaves a half-written best/.
    tmp = run_dir / f".{BEST_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, info.strategy, tmp)
    tokenizer.save_pretrained(tmp, tokenizer_class(encoder_config(model), tokenizer))
    shutil.rmtree(run_dir / BEST_DIR, ignore_errors=True)
    tmp.rename(run_dir / BEST_DIR)


def finetune(
    info: T.TaskInfo, cfg: FinetuneConfig, model_dir: Path, run_dir: Path
) -> dict[str, float]:
    """Train, keep the best dev checkpoint in RUN_DIR/best, and return its dev metrics (on
    rank 0; other torchrun ranks return {})."""
    cfg.validate()
    with distributed.process_group(cfg.device) as device:
        return _finetune(info, dataclasses.replace(cfg, device=device), model_dir, run_dir)


def _finetune(
    info: T.TaskInfo, cfg: FinetuneConfig, model_dir: Path, run_dir: Path
) -> dict[str, float]:
    seed_everything(cfg.seed)
    main, rank, world = distributed.is_main(), distributed.rank(), distributed.world_size()
    device = torch.device(cfg.device)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    pad_id = tokenizer.pad_token_id or 0
    model = T.build_model(info, model_dir, tokenizer)
    set_unpadded(model)  # heads read only real positions, so padding need not be computed
    T.fit_max_length(info, model)
    train = load_split(info, tokenizer, "train", cfg.max_train_examples, train=True)
    dev = load_split(info, tokenizer, "dev", cfg.max_eval_examples, train=False)
    summary = apply_strategy(model, info.strategy)
    logger.info("trainable parameters: %s", summary)
    model.to(device).train()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        info.save(run_dir)
    cache = frozen.install(model, info.task.cache) if info.strategy == "frozen" else None
    if cache is not None:
        for name, split in (("train", train), ("dev", dev)):
            cache.fill(name, split.features, pad_id, cfg.eval_batch_size, device)

    lengths = [len(ids) for ids in train.features["input_ids"]]
    full, rest = divmod(len(lengths), cfg.batch_size)
    steps_per_epoch = full + (rest >= world)  # a last batch smaller than the ranks is skipped
    total = steps_per_epoch * cfg.epochs
    optimizer = adamw(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    schedule = linear_schedule(optimizer, max(1, int(cfg.warmup_ratio * total)), total)
    objectives = info.task.objectives(info)
    rng = random.Random(cfg.seed)  # the same batch order on every rank
    log = MetricsLog(run_dir) if main else None
    write = log.write if log is not None else lambda record: None
    write({"split": "setup", "step": 0, **summary, "train_rows": len(lengths)})
    # Rank 0 evaluates the unwrapped model alone.
    trained = distributed.wrap_model(model, find_unused=True)
    best: dict[str, float] | None = None
    step, tokens, started = 0, 0, time.monotonic()
    extra, dtype = info.task.label_keys, info.task.label_dtype

    def dev_eval(epoch: float) -> None:
        nonlocal best
        if main:
            metrics = evaluate(info, model, dev, pad_id, cfg, cache)
            write({"split": "dev", "step": step, "epoch": round(epoch, 3), **metrics})
            logger.info("step %d dev %s", step, metrics)
            if best is None or metrics[info.main_metric] > best[info.main_metric]:
                best = metrics
                with frozen.real_encoder(model, cache):
                    _save_best(model, info, tokenizer, run_dir)
        distributed.barrier()

    try:
        with progress_bar(disable=not (cfg.progress and main)) as bar:
            task = bar.add_task("fine-tuning", total=len(lengths) * cfg.epochs, tokens=0)
            for epoch in range(cfg.epochs):
                order = batch_order(lengths, cfg.batch_size, rng, cfg.group_by_length)
                share = rank_share(order, rank, world)
                rows = [len(b) for b in order if len(b) >= world]  # per step, over the ranks
                if main and (left_out := len(lengths) - sum(rows)):
                    logger.warning(
                        "epoch %d: the last batch's %d row(s) left out: fewer than %d ranks",
                        epoch + 1, left_out, world,
                    )  # fmt: skip
                batches = iterate(train.features, share, pad_id, extra, dtype)
                for global_rows, (indices, batch) in zip(rows, batches, strict=True):
                    if cache is not None:
                        cache.select("train", indices)
                    stats, norm = train_step(
                        trained,
                        [batch],
                        optimizer,
                        objectives,
                        precision=cfg.precision,
                        grad_clip=cfg.max_grad_norm,
                    )
                    if not math.isfinite(norm):
                        logger.warning("step %d: non-finite gradient, update skipped", step + 1)
                    schedule.step()
                    step += 1
                    tokens += stats.tokens  # over every rank
                    bar.update(task, advance=global_rows, tokens=tokens)
                    if step % cfg.log_every == 0 or step == total:
                        lr = schedule.get_last_lr()[0]
                        rates = stats.rates(objectives)
                        record = {"split": "train", "step": step, **rates, "lr": lr}
                        write({**record, "epoch": round(step / steps_per_epoch, 3)})
                    if cfg.eval_every and step % cfg.eval_every == 0 and step % steps_per_epoch:
                        dev_eval(step / steps_per_epoch)
                dev_eval(epoch + 1)
        # Wall time of the loop, dev evaluations and best-checkpoint saves included.
        elapsed = time.monotonic() - started
        rate = {"train_seconds": round(elapsed, 2), "train_tokens": tokens}
        write({"split": "summary", "step": step, **rate, "tokens_per_s": tokens / elapsed})
    finally:
        if log is not None:
            log.close()
    if not main:
        return {}
    assert best is not None  # at least one epoch ran, so dev was evaluated
    logger.info("trained %d steps in %.0fs (%.0f tokens/s)", step, elapsed, tokens / elapsed)
    write_text(run_dir / RESULTS_FILE, json.dumps(best, indent=2) + "\n")
    plot_dev_metric(run_dir, info.main_metric)
    report_table(info, best, summary)
    return best


def load_best(run_dir: Path) -> tuple[T.TaskInfo, nn.Module, Tokenizer]:
    """The task description, best model (in eval mode) and tokenizer of a finished run."""
    info = T.TaskInfo.load(run_dir)
    best = run_dir / BEST_DIR
    if not best.is_dir():
        raise DataError(f"'{run_dir}' has no {BEST_DIR}/ checkpoint; did fine-tuning finish?")
    tokenizer = Tokenizer.from_pretrained(best)
    model = load_model(T.build_model(info, best, tokenizer), info.strategy, best)
    return info, model.eval(), tokenizer
