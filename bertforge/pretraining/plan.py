"""Resolve once, then train: everything a pretraining run decides before its first step, from
the recipe, the caller's options and the data's manifest, as one frozen `PretrainPlan`.

The plan is the only place that decides which objectives a run has (the recipe's
[objectives], or the family's default: MLM, plus NSP/SOP on pair data when the family has that
head), which model parts they need, how the global batch splits over ranks and micro-batches,
and whether the data fits (tokenizer, sequence length, masking mode). Its `settings()` are
written to `RUN_DIR/plan.json` (`training.rundir`); a resume compares them with the new
plan's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertforge.config import EncoderConfig
from bertforge.data.builder import TOKENIZER_DIR
from bertforge.data.instances import PAIR_OBJECTIVES
from bertforge.data.shards import check_tokenizer, read_manifest
from bertforge.errors import ConfigError, DataError
from bertforge.families import family
from bertforge.objectives import Objective, pretraining_objectives
from bertforge.pretraining.init import (
    Start,
    carried_heads,
    check_init_tokenizer,
    default_objectives,
    init_recipe,
    read_start,
)
from bertforge.pretraining.models import (
    check_generator,
    check_heads,
    check_teacher_vocab,
    model_config,
)
from bertforge.pretraining.recipe import Recipe
from bertforge.tokenization import Tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainPlan:
    recipe: Recipe  # with its objectives resolved: export and resume rebuild the same model
    data_dir: Path
    manifest: dict[str, Any]
    world_size: int
    micro_batch_size: int  # per forward/backward on each rank
    accumulation: int  # micro-batches per rank per step
    objectives: tuple[Objective, ...]
    heads: frozenset[str]  # the model's head parts: those the objectives read + init.carry
    model_config: EncoderConfig  # of the exported model (the discriminator, the student)

    @property
    def fields(self) -> list[str]:
        """Batch fields the collator must make."""
        return sorted({f for o in self.objectives for f in o.fields})

    @property
    def pairs(self) -> bool:
        return self.manifest["objective"] in PAIR_OBJECTIVES

    def settings(self) -> dict[str, Any]:
        """What the run is, as JSON: compared on resume, written to RUN_DIR/plan.json."""
        shards = json.dumps(self.manifest["shards"], sort_keys=True).encode()
        return {
            "recipe": _jsonable(dataclasses.asdict(self.recipe)),
            "data": {
                "dir": str(self.data_dir),
                "tokenizer": self.manifest["tokenizer_fingerprint"],
                "shards": hashlib.sha256(shards).hexdigest(),
            },
            "world_size": self.world_size,
            "micro_batch_size": self.micro_batch_size,
            "accumulation": self.accumulation,
        }

    def schedule(self) -> str:
        t = self.recipe.train
        return (
            f"peak lr {t.lr:g} after {t.warmup_steps} warmup steps, linear decay to 0 at step "
            f"{t.max_steps}; global batch {t.batch_size} = {self.world_size} rank(s) x "
            f"{self.accumulation} x {self.micro_batch_size}"
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def plan_pretraining(recipe: Recipe, data_dir: Path, world_size: int = 1) -> PretrainPlan:
    """Check the recipe against the data and resolve everything the run needs."""
    data_dir = Path(data_dir).resolve()
    manifest = read_manifest(data_dir)
    tokenizer = data_tokenizer(data_dir, manifest)
    cfg = recipe.train
    micro = cfg.micro_batch(world_size)
    if micro != cfg.micro_batch_size:
        log.warning(
            "train.micro_batch_size=%d is more than the global batch_size=%d gives each of "
            "%d rank(s); using micro-batches of %d",
            cfg.micro_batch_size, cfg.batch_size, world_size, micro,
        )  # fmt: skip
    accumulation = cfg.accumulation_per_rank(world_size)
    if recipe.data.documents == "separate" and manifest["objective"] != "full-sentences":
        raise ConfigError(
            f'[data] documents = "separate" needs full-sentences shards (documents packed with '
            f"a separator between them); '{data_dir}' holds {manifest['objective']!r} "
            "instances: rebuild with `build-data --objective full-sentences`, or drop the option"
        )
    if recipe.masking.mode == "knowledge" and not manifest.get("word_starts"):
        raise ConfigError(
            f"knowledge masking needs words, and '{data_dir}' was built without a segmenter; "
            "rebuild it with `build-data --segmenter jieba [--lexicon FILE]`"
        )
    start = None
    if recipe.init.model:
        start = read_start(recipe)
        recipe = init_recipe(recipe, start)
        check_init_tokenizer(recipe, data_dir, manifest)
    objectives = tuple(resolve_objectives(recipe, manifest["objective"], start))
    trained = frozenset(h for o in objectives for h in o.heads)
    check_heads(recipe, trained)
    if start is not None and "teacher" in trained:
        raise ConfigError(
            "--init starts one model from a checkpoint; distillation cuts its student from "
            "the teacher (--teacher): drop --init"
        )
    carry = carried_heads(recipe, start, trained) if start is not None else ()
    recipe = dataclasses.replace(
        recipe,
        objectives={o.name: o.weight for o in objectives},
        init=dataclasses.replace(recipe.init, carry=carry),
    )
    heads = trained | frozenset(carry)
    if "teacher" in heads:
        check_teacher_vocab(recipe.distill.checked_teacher(), tokenizer)
    config = model_config(recipe, tokenizer, heads)
    check_generator(recipe, config, heads)
    if tokenizer.vocab_size > config.vocab_size:
        raise ConfigError(
            f"the data's tokenizer has {tokenizer.vocab_size} tokens but the model's "
            f"vocab_size is {config.vocab_size}; rebuild the data with the model's tokenizer"
        )
    length = int(manifest["max_seq_len"])
    if length > config.max_length:
        raise ConfigError(
            f"'{data_dir}' holds sequences of up to {length} tokens but the model has "
            f"{config.max_length} positions; raise model.max_position_embeddings or rebuild "
            f"the data with --max-seq-len {config.max_length}"
        )
    plan = PretrainPlan(
        recipe, data_dir, manifest, world_size, micro, accumulation, objectives, heads, config
    )
    if 0 < cfg.max_steps <= cfg.warmup_steps:
        log.warning(
            "warmup (%d steps) is not shorter than the run (%d steps): the learning rate "
            "never reaches its peak; lower --warmup-steps. Schedule: %s",
            cfg.warmup_steps, cfg.max_steps, plan.schedule(),
        )  # fmt: skip
    else:
        log.info("schedule: %s", plan.schedule())
    return plan


def data_tokenizer(data_dir: Path, manifest: dict[str, Any]) -> Tokenizer:
    """The tokenizer the data was built with (its copy beside the shards), checked against
    the manifest's fingerprint."""
    if not (data_dir / TOKENIZER_DIR).is_dir():
        raise DataError(
            f"'{data_dir}' has no {TOKENIZER_DIR}/ copy of its tokenizer; rebuild it with "
            "`bertforge build-data --force`"
        )
    tokenizer = Tokenizer.from_pretrained(data_dir / TOKENIZER_DIR)
    check_tokenizer(data_dir, manifest, tokenizer)
    return tokenizer


def resolve_objectives(
    recipe: Recipe, data_objective: str, start: Start | None = None
) -> list[Objective]:
    """The recipe's [objectives], or the default: what the --init checkpoint was trained for
    (`init.default_objectives`), else the family's MLM, plus NSP/SOP when the shards hold
    sentence pairs and the family has that head. Pair objectives need pair data."""
    weights = dict(recipe.objectives)
    pairs = data_objective in PAIR_OBJECTIVES
    if not weights and start is not None:
        weights = default_objectives(start, pairs)
    elif not weights:
        weights = {"mlm": 1.0}
        if pairs and family(recipe.family).pair_head:
            weights["nsp"] = 1.0
    if weights.get("nsp") and not pairs:
        raise ConfigError(
            f"[objectives] nsp needs sentence-pair shards (build-data --objective nsp or sop); "
            f"these were built as {data_objective!r}: drop nsp or rebuild the data"
        )
    return pretraining_objectives(weights, recipe.objective_options())
