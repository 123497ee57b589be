"""A pretraining (or distillation) run: plan -> model, data, optimizer -> `Trainer` -> export.

A run directory holds `plan.json` and `recipe.toml` (what the run is), `init.json` (a run from
a checkpoint: which parts were loaded and which are new), `tokenizer/`,
`metrics.jsonl` (+ `tensorboard/`), `checkpoints/step-*`, `loss.png` and, at the end, `hf/`:
the family's HF pretraining class (ELECTRA: `hf/discriminator` and `hf/generator`). Under
torchrun every rank trains its share of each batch; rank 0 alone writes the directory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from bertforge.atomic import write_text
from bertforge.data.collate import PretrainingCollator
from bertforge.data.loader import IndexedDataset, PhasedLoader, PretrainingLoader
from bertforge.data.shards import ShardedDataset
from bertforge.data.short import ShortSequences
from bertforge.errors import CheckpointError
from bertforge.models.encoder import Encoder, use_attention_kernel
from bertforge.objectives import Objective, pretraining_objectives
from bertforge.pretraining.heldout import heldout_batches, unigram_accuracy
from bertforge.pretraining.init import freeze_carried, load_init
from bertforge.pretraining.models import build_model, export_model, load_trained, model_config
from bertforge.pretraining.plan import PretrainPlan, data_tokenizer, plan_pretraining
from bertforge.pretraining.recipe import Recipe, load_recipe
from bertforge.pretraining.recipe_tables import TrainConfig
from bertforge.tokenization import Tokenizer
from bertforge.training import distributed
from bertforge.training.checkpoint import latest_checkpoint, load_model_state, remove_partial
from bertforge.training.loggers import RunLog, check_report_to
from bertforge.training.optim import build_optimizer, lr_schedule
from bertforge.training.plots import UNIGRAM, plot_run
from bertforge.training.rundir import exclusive, record_settings, resume_point
from bertforge.training.runtime import seed_everything
from bertforge.training.step import Batch, evaluate
from bertforge.training.trainer import LoopSettings, Trainer

log = logging.getLogger(__name__)

HF_DIR = "hf"
INIT_FILE = "init.json"  # a run from a checkpoint: the parts loaded and the parts new
RECIPE_FILE = "recipe.toml"
TOKENIZER_DIR = "tokenizer"


@dataclass
class PretrainOutcome:
    run_dir: Path
    hf_dir: Path | None  # None when the run stopped early (`stop_at`) or on other ranks
    step: int
    plan: PretrainPlan
    eval: dict[str, Any] | None  # the last held-out evaluation


def pretrain(
    recipe: Recipe,
    data_dir: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    allow_changes: bool = False,
    device: str = "cpu",
    stop_at: int | None = None,
    report_to: Sequence[str] = (),
) -> PretrainOutcome:
    """Train until `recipe.train.max_steps` and export to RUN_DIR/hf.

    `stop_at` ends the run early at that step with a checkpoint, as a preempted job would
    (the schedule still targets `max_steps`; `resume=True` continues). Launched by torchrun,
    it trains data-parallel over the ranks."""
    check_report_to(report_to)
    with distributed.process_group(device) as rank_device:
        plan = plan_pretraining(recipe, data_dir, distributed.world_size())
        with exclusive(run_dir):
            return _run(plan, run_dir, resume, allow_changes, rank_device, stop_at, report_to)


class HeldOut:
    """Pretraining's evaluation: the objectives on a fixed held-out sample, with the MLM
    unigram baseline beside them."""

    def __init__(
        self,
        model: nn.Module,
        batches: list[list[Batch]],
        objectives: Sequence[Objective],
        cfg: TrainConfig,
        baseline: float | None,
        logs: bool,
    ) -> None:
        self.model, self.batches, self.objectives = model, batches, objectives
        self.cfg, self.baseline, self.logs = cfg, baseline, logs
        self.last: dict[str, Any] | None = None

    def due(self, step: int) -> bool:
        return bool(self.batches) and (
            step % self.cfg.eval_every == 0 or step == self.cfg.max_steps
        )

    def __call__(self, step: int) -> dict[str, Any] | None:
        result = evaluate(self.model, self.batches, self.objectives, self.cfg.precision)
        if self.baseline is not None:
            result[UNIGRAM] = self.baseline
        self.last = result
        if not self.logs:
            return None
        log.info("step %d eval %s", step, result)
        return {"split": "eval", **result}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _run(
    plan: PretrainPlan,
    run_dir: Path,
    resume: bool,
    allow_changes: bool,
    device: str,
    stop_at: int | None,
    report_to: Sequence[str],
) -> PretrainOutcome:
    recipe, cfg = plan.recipe, plan.recipe.train
    main, sharded = distributed.is_main(), cfg.parallel == "fsdp" and plan.world_size > 1
    checkpoint = resume_point(run_dir, plan.settings(), resume, allow_changes)
    tokenizer = data_tokenizer(plan.data_dir, plan.manifest)
    train_set = ShardedDataset(plan.data_dir, "train")
    has_eval = any(s["split"] == "eval" for s in plan.manifest["shards"])
    eval_set = ShardedDataset(plan.data_dir, "eval") if has_eval else None

    seed_everything(cfg.seed)
    model = build_model(recipe, plan.model_config, plan.heads)
    if recipe.init.model and checkpoint is None:  # a resumed run reads its own checkpoint
        parts = load_init(model, recipe)
        if main:
            started = {"parts": parts, "carried": list(recipe.init.carry)}
            write_text(run_dir / INIT_FILE, json.dumps(started, indent=1) + "\n")
    freeze_carried(model, recipe.init.carry)
    model = model.to(device).train()
    for module in model.modules():
        if isinstance(module, Encoder):
            module.check_inputs = False  # the collator already range-checked every id
            module.unpad = True  # the losses read real positions only; skip the padding
    use_attention_kernel(model, cfg.attention, device)
    # Every rank built the same weights from the same seed. DDP wraps the model; FSDP shards
    # it in place, and the optimizer must then be built on the shards.
    trained = distributed.wrap_model(model, shard=cfg.parallel == "fsdp")
    optimizer = build_optimizer(
        model,
        cfg.optimizer,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
    )
    scheduler = lr_schedule(
        optimizer, cfg.warmup_steps, cfg.max_steps, cfg.schedule, cfg.decay_steps
    )
    collator = PretrainingCollator.from_tokenizer(
        tokenizer,
        recipe.masking,
        cfg.seed,
        fields=plan.fields,
        type_ids=plan.model_config.type_vocab_size > 1 and tokenizer.marks_segments,
        separator=tokenizer.sep_token_id if recipe.data.documents == "separate" else None,
    )
    # Under DDP rank 0 evaluates alone, on the unwrapped model (DDP's forward would wait for the
    # others); under FSDP every rank runs the same held-out batches, since each forward
    # gathers every rank's shards.
    evaluates = eval_set is not None and (main or sharded)
    eval_batches = heldout_batches(eval_set, collator, cfg) if evaluates else []
    held_out = HeldOut(
        model,
        eval_batches,
        plan.objectives,
        cfg,
        unigram_accuracy(train_set, collator, eval_batches),
        logs=main,
    )
    settings = LoopSettings(
        max_steps=cfg.max_steps,
        precision=cfg.precision,
        grad_clip=cfg.grad_clip,
        log_every=cfg.log_every,
        save_every=cfg.save_every,
        keep_last=cfg.keep_last,
        max_bad_steps=cfg.max_bad_steps,
        stop_at=stop_at,
        label="pretrain",
    )
    trainer = Trainer(
        model,
        optimizer,
        scheduler,
        plan.objectives,
        _loader(train_set, collator, plan),
        settings,
        run_dir,
        trained=trained,
        evaluation=held_out,
    )
    step = trainer.resume(checkpoint) if checkpoint is not None else 0
    if main:
        remove_partial(run_dir)
        record_settings(run_dir, plan.settings())
        write_text(run_dir / RECIPE_FILE, recipe.to_toml())
        tokenizer.save_pretrained(run_dir / TOKENIZER_DIR)
        trainer.log = RunLog(run_dir, report_to, resume_step=step if resume else None)
    try:
        result = trainer.fit(step)
    finally:
        if trainer.log is not None:
            trainer.log.close()
    hf_dir = None
    if not result.stopped:
        if main:
            if result.step:  # a 0-step run has no training curve
                plot_run(run_dir)
            hf_dir = export(run_dir, run_dir / HF_DIR)
        distributed.barrier()  # the export is complete when any rank returns
    return PretrainOutcome(run_dir, hf_dir, result.step, plan, held_out.last)


def _loader(
    data: ShardedDataset, collator: PretrainingCollator, plan: PretrainPlan
) -> PretrainingLoader | PhasedLoader:
    """This rank's batches: the data as built, after a short-sequence phase if the recipe
    has one (its global batch holds as many more sequences as there are pieces per
    instance, so the tokens per step stay about the same)."""
    cfg = plan.recipe.train

    def phase(dataset: IndexedDataset, scale: int) -> PretrainingLoader:
        return PretrainingLoader(
            dataset,
            collator,
            global_batch_size=cfg.batch_size * scale,
            seed=cfg.seed,
            accumulation_steps=plan.accumulation,
            rank=distributed.rank(),
            world_size=plan.world_size,
            num_workers=cfg.num_workers,
        )

    if not cfg.short_steps:
        return phase(data, 1)
    short = ShortSequences(data, cfg.short_seq_len)
    scale = max(1, round(len(short) / len(data)))
    log.info(
        "steps 1-%d on sequences of up to %d tokens (%d per step), then the data's %d",
        cfg.short_steps,
        cfg.short_seq_len,
        cfg.batch_size * scale,
        data.manifest["max_seq_len"],
    )
    return PhasedLoader([phase(short, scale), phase(data, 1)], [cfg.short_steps])


def export(run_dir: Path, output: Path, checkpoint: Path | None = None) -> Path:
    """Write a checkpoint of `run_dir` (default: the newest) as the family's HF pretraining
    class with its tokenizer (ELECTRA: `discriminator/` and `generator/` below `output`)."""
    ckpt = checkpoint or latest_checkpoint(run_dir)
    if ckpt is None:
        raise CheckpointError(f"'{run_dir}' has no complete checkpoint to export")
    tokenizer = Tokenizer.from_pretrained(run_dir / TOKENIZER_DIR)
    recipe = load_recipe(run_dir / RECIPE_FILE)
    objectives = pretraining_objectives(recipe.objectives, recipe.objective_options())
    heads = frozenset(h for o in objectives for h in o.heads) | frozenset(recipe.init.carry)
    config = model_config(recipe, tokenizer, heads)
    model = load_trained(recipe, config, heads, load_model_state(ckpt))
    export_model(model, output, tokenizer)
    log.info("exported %s to %s", ckpt, output)
    return output
