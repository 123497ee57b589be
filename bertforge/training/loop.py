"""The pretraining loop: shards in, checkpoints, metrics and an HF export out.

Kept short on purpose: the step lives in `step.py`, checkpoints in `checkpoint.py`, metrics
and plots in `metrics.py`, multi-process data parallelism in `distributed.py`. Under torchrun
every rank runs this loop on its part of each global batch; rank 0 alone writes the run
directory.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from bertforge.atomic import write_text
from bertforge.config import EncoderConfig
from bertforge.data.builder import TOKENIZER_DIR
from bertforge.data.collate import PretrainingCollator
from bertforge.data.instances import PAIR_OBJECTIVES
from bertforge.data.loader import IndexedDataset, PhasedLoader, PretrainingLoader
from bertforge.data.shards import ShardedDataset
from bertforge.data.short import ShortSequences
from bertforge.errors import BertforgeError, CheckpointError, ConfigError, DataError
from bertforge.families import family
from bertforge.models.encoder import Encoder
from bertforge.objectives import Objective, pretraining_objectives
from bertforge.progress import progress_bar
from bertforge.tokenization import Tokenizer
from bertforge.training import distributed
from bertforge.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_model_state,
    remove_partial,
    save_checkpoint,
)
from bertforge.training.heldout import heldout_batches, unigram_accuracy
from bertforge.training.metrics import UNIGRAM, MetricsLog, plot_run
from bertforge.training.optim import build_optimizer, linear_schedule
from bertforge.training.pretrain_model import (
    build_model,
    export_model,
    load_trained,
    trained_config,
)
from bertforge.training.recipe import Recipe, TrainConfig, load_recipe
from bertforge.training.runtime import seed_everything
from bertforge.training.step import evaluate, train_step

log = logging.getLogger(__name__)


class TrainingAborted(BertforgeError):
    """Too many consecutive non-finite steps; the last good checkpoint is kept."""


def pretrain(
    recipe: Recipe,
    data_dir: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    device: str = "cpu",
    stop_at: int | None = None,
) -> Path | None:
    """Train until `recipe.train.max_steps`; returns the exported HF directory.

    `stop_at` ends the job early at that step with a checkpoint, as a preempted job would
    (the schedule still targets `max_steps`); it returns None and `resume=True` continues.
    Launched by torchrun, it trains data-parallel over the ranks (see `distributed.py`)."""
    with distributed.process_group(device) as rank_device:
        return _pretrain(recipe, data_dir, run_dir, resume, rank_device, stop_at)


def _pretrain(
    recipe: Recipe,
    data_dir: Path,
    run_dir: Path,
    resume: bool,
    device: str,
    stop_at: int | None,
) -> Path | None:
    cfg = recipe.train
    world_size = distributed.world_size()
    cfg.fit_micro_batch(world_size)
    accumulation = cfg.accumulation_per_rank(world_size)  # checked before any data is read
    train_set = ShardedDataset(data_dir, "train")
    if not (data_dir / TOKENIZER_DIR).is_dir():
        raise DataError(
            f"'{data_dir}' has no {TOKENIZER_DIR}/ copy of its tokenizer; rebuild it with "
            "`bertforge build-data --force`"
        )
    tokenizer = Tokenizer.from_pretrained(data_dir / TOKENIZER_DIR)
    train_set.check_tokenizer(tokenizer)
    if recipe.masking.mode == "knowledge" and not train_set.manifest.get("word_starts"):
        raise ConfigError(
            f"knowledge masking needs words, and '{data_dir}' was built without a segmenter; "
            "rebuild it with `build-data --segmenter jieba [--lexicon FILE]`"
        )
    has_eval = any(s["split"] == "eval" for s in train_set.manifest["shards"])
    eval_set = ShardedDataset(data_dir, "eval") if has_eval else None

    seed_everything(cfg.seed)
    objectives = run_objectives(recipe, train_set.manifest["objective"])
    # The resolved objectives go into the run's recipe: export and resume rebuild the same model.
    recipe = dataclasses.replace(recipe, objectives={o.name: o.weight for o in objectives})
    names = set(recipe.objectives)
    model = build_model(recipe, tokenizer, names).to(device).train()
    _check_length(train_set, trained_config(model), data_dir)
    for module in model.modules():
        if isinstance(module, Encoder):
            module.check_inputs = False  # the collator already range-checked every id
            module.unpad = True  # the losses read real positions only; skip the padding
    # Every rank built the same weights from the same seed. DDP wraps the model; FSDP shards
    # it in place, and the optimizer must then be built on the shards.
    trained = distributed.wrap_model(model, shard=cfg.parallel == "fsdp")
    sharded = distributed.is_sharded(trained)
    optimizer = build_optimizer(model, cfg)
    scheduler = linear_schedule(optimizer, cfg.warmup_steps, cfg.max_steps)
    collator = PretrainingCollator.from_tokenizer(
        tokenizer,
        recipe.masking,
        cfg.seed,
        fields=sorted({f for o in objectives for f in o.fields}),
        type_ids=trained_config(model).type_vocab_size > 1,
    )
    loader = _loader(train_set, collator, cfg, accumulation, world_size)

    step = 0
    if resume:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise CheckpointError(f"'{run_dir}' has no complete checkpoint to resume from")
        weights, optimizer_state, trainer = load_checkpoint(ckpt, scheduler)
        distributed.load_full_state(model, optimizer, weights, optimizer_state)
        step = trainer["step"]
        loader.load_state_dict(trainer["loader"])
        log.info("resumed from %s at step %d", ckpt, step)
    elif latest_checkpoint(run_dir) is not None:
        raise ConfigError(f"'{run_dir}' already holds a run; pass --resume or a new --output")
    main = distributed.is_main()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_partial(run_dir)
        write_text(run_dir / "recipe.toml", recipe.to_toml())
        tokenizer.save_pretrained(run_dir / "tokenizer")

    # Under DDP rank 0 evaluates alone, on the unwrapped model (DDP's forward would wait for the
    # others); under FSDP every rank runs the same held-out batches, since each forward
    # gathers every rank's shards.
    evaluates = eval_set is not None and (main or sharded)
    eval_batches = heldout_batches(eval_set, collator, cfg) if evaluates else []
    baseline = unigram_accuracy(train_set, collator, eval_batches)
    metrics = MetricsLog(run_dir, resume_step=step if resume else None) if main else None
    bad_steps = 0
    start_step, start_time = step, time.perf_counter()
    batches = iter(loader)
    try:
        with progress_bar(unit="steps", disable=not main) as bar:
            task = bar.add_task("pretrain", total=cfg.max_steps, completed=step, tokens=0)
            while step < cfg.max_steps:
                stats, grad_norm = train_step(
                    trained,
                    next(batches),
                    optimizer,
                    objectives,
                    precision=cfg.precision,
                    grad_clip=cfg.grad_clip,
                )
                rates = stats.rates(objectives)
                if not np.isfinite(grad_norm) or not np.isfinite(rates["loss"]):
                    bad_steps += 1
                    log.warning("step %d: non-finite loss/gradient, update skipped", step + 1)
                    if bad_steps >= cfg.max_bad_steps:
                        raise TrainingAborted(
                            f"{bad_steps} non-finite steps in a row at step {step + 1}; lower "
                            f"the learning rate; the last good checkpoint is kept in {run_dir}"
                        )
                    continue
                bad_steps = 0
                scheduler.step()
                step += 1
                elapsed = time.perf_counter() - start_time
                bar.update(task, advance=1, tokens=bar.tasks[task].fields["tokens"] + stats.tokens)
                bar.update(task, description=_summary(rates))
                if metrics is not None and (step % cfg.log_every == 0 or step == cfg.max_steps):
                    metrics.write(
                        {
                            "step": step,
                            "split": "train",
                            **rates,
                            "lr": scheduler.get_last_lr()[0],
                            "grad_norm": grad_norm,
                            "tokens_per_s": bar.tasks[task].fields["tokens"] / max(elapsed, 1e-9),
                            "steps_per_s": (step - start_step) / max(elapsed, 1e-9),
                        }
                    )
                if eval_batches and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                    result = evaluate(model, eval_batches, objectives, cfg.precision)
                    if baseline is not None:
                        result[UNIGRAM] = baseline
                    if metrics is not None:
                        metrics.write({"step": step, "split": "eval", **result})
                        log.info("step %d eval %s", step, result)
                if step % cfg.save_every == 0 or step in (cfg.max_steps, stop_at):
                    # A collective under FSDP (the shards are gathered to rank 0).
                    weights, optimizer_state = distributed.full_state(model, optimizer)
                    if main:  # the loader state is global
                        save_checkpoint(
                            run_dir,
                            step,
                            weights,
                            optimizer_state,
                            scheduler,
                            {"loader": loader.state_dict()},
                            cfg.keep_last,
                        )
                    # No rank moves on (or exits) before the checkpoint is complete.
                    distributed.barrier()
                if step == stop_at:
                    return None
    finally:
        if metrics is not None:
            metrics.close()
    if main:
        plot_run(run_dir)
        export(run_dir, run_dir / "hf")
    distributed.barrier()  # the export is complete when any rank returns
    return run_dir / "hf"


def run_objectives(recipe: Recipe, data_objective: str) -> list[Objective]:
    """The recipe's [objectives], or the family's default: MLM, plus NSP/SOP when the shards
    hold sentence pairs and the family has that head. Pair objectives need pair data."""
    weights = dict(recipe.objectives)
    pairs = data_objective in PAIR_OBJECTIVES
    if not weights:
        weights = {"mlm": 1.0}
        if pairs and family(recipe.family).pair_head:
            weights["nsp"] = 1.0
    if weights.get("nsp") and not pairs:
        raise ConfigError(
            f"[objectives] nsp needs sentence-pair shards (build-data --objective nsp or sop); "
            f"these were built as {data_objective!r}: drop nsp or rebuild the data"
        )
    return pretraining_objectives(weights, recipe.objective_options())


def _loader(
    data: ShardedDataset,
    collator: PretrainingCollator,
    cfg: TrainConfig,
    accumulation: int,
    world_size: int,
) -> PretrainingLoader | PhasedLoader:
    """This rank's batches: the data as built, after a short-sequence phase if the recipe
    has one (its global batch holds as many more sequences as there are pieces per
    instance, so the tokens per step stay about the same)."""

    def phase(dataset: IndexedDataset, scale: int) -> PretrainingLoader:
        return PretrainingLoader(
            dataset,
            collator,
            global_batch_size=cfg.batch_size * scale,
            seed=cfg.seed,
            accumulation_steps=accumulation,
            rank=distributed.rank(),
            world_size=world_size,
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


def _check_length(data: ShardedDataset, config: EncoderConfig, data_dir: Path) -> None:
    length = int(data.manifest["max_seq_len"])
    if length > config.max_length:
        raise ConfigError(
            f"'{data_dir}' holds sequences of up to {length} tokens but the model has "
            f"{config.max_length} positions; raise model.max_position_embeddings or rebuild "
            f"the data with --max-seq-len {config.max_length}"
        )


def _summary(rates: dict[str, float]) -> str:
    """The progress bar's description: the loss and each objective's accuracy."""
    accs = " ".join(
        f"{k.removesuffix('_acc')} {v:.3f}" for k, v in rates.items() if k.endswith("_acc")
    )
    return f"loss {rates['loss']:.3f} {accs}".strip()


def export(run_dir: Path, output: Path, checkpoint: Path | None = None) -> Path:
    """Write a checkpoint of `run_dir` (default: the newest) as the family's HF pretraining
    class with its tokenizer (ELECTRA: `discriminator/` and `generator/` below `output`)."""
    ckpt = checkpoint or latest_checkpoint(run_dir)
    if ckpt is None:
        raise CheckpointError(f"'{run_dir}' has no complete checkpoint to export")
    tokenizer = Tokenizer.from_pretrained(run_dir / "tokenizer")
    recipe = load_recipe(run_dir / "recipe.toml")
    state = load_model_state(ckpt)
    names = set(recipe.objectives)
    if not names:  # a run from before the recipe recorded its objectives
        names = {"mlm", *(["nsp"] if any(k.startswith("nsp.") for k in state) else [])}
    export_model(load_trained(recipe, tokenizer, names, state), output, tokenizer)
    log.info("exported %s to %s", ckpt, output)
    return output
