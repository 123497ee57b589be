"""Pretraining recipes: TOML files with a `family` and a size `preset`, [model], [train],
[masking] and [objectives] tables, and `--set` overrides.

Recipes ship inside the package (`bertforge/recipes/*.toml`): `--config bert-mini` finds one
by name wherever bertforge is installed; any other value is read as a path.

Unknown keys are errors (a typo must not silently fall back to a default), and the resolved
recipe is written back as TOML into the run directory, so a run can be reproduced from it.
One module of some 300 lines on purpose: each table's fields, their checks, their TOML form
and the `--set` coercion are read together when a field is added.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bertforge.config import EncoderConfig
from bertforge.errors import BertforgeError, ConfigError
from bertforge.families import family
from bertforge.objectives import pretraining_objectives
from bertforge.objectives.masking import MaskingConfig
from bertforge.training.optim import SCHEDULES

TABLES = ("model", "train", "data", "masking", "objectives", "generator", "distill", "init")
DOCUMENTS = ("cross", "separate")
# DistilBERT's loss weights (Sanh et al., 2019): soft targets, MLM, hidden-state cosine; what
# `distill` trains unless the recipe names its objectives.
DISTILBERT_LOSS = {"distill_ce": 5.0, "mlm": 2.0, "distill_cos": 1.0}
# The preset of a run started from a checkpoint: [model] holds its whole config (`init.py`).
INIT_PRESET = "init"
# [masking] mode = "family": the masking of the family's packaged recipe, under the other
# [masking] keys the recipe sets.
FAMILY_MASKING = "family"


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

    def __post_init__(self) -> None:
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
    ELECTRA's generator checkpoint (a fresh one of [generator] size without it). `carry` is
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


@dataclass(frozen=True)
class Recipe:
    family: str = "bert"  # the model family (HF model_type), see bertforge/families
    preset: str = "mini"
    model: dict[str, Any] = field(default_factory=dict)  # EncoderConfig overrides
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    # Objective name -> loss weight; empty: the family's MLM (+ NSP/SOP on pair data).
    objectives: dict[str, float] = field(default_factory=dict)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    init: InitConfig = field(default_factory=InitConfig)

    def objective_options(self) -> dict[str, dict[str, Any]]:
        """Settings of the objectives that have any, by objective name."""
        kl = {"temperature": self.distill.temperature, "masked_only": self.distill.masked_only}
        return {"distill_ce": kl}

    def encoder_config(self, vocab_size: int, pad_token_id: int) -> EncoderConfig:
        if self.preset == INIT_PRESET:  # a checkpoint's config, as the run recorded it
            return EncoderConfig.from_dict(
                {"model_type": self.family, **self.model}, source="[model] of an --init run"
            )
        fields = {"vocab_size": vocab_size, "pad_token_id": pad_token_id, **self.model}
        return family(self.family, "recipe").config(self.preset, **fields)

    def to_toml(self) -> str:
        lines = [f"family = {_toml_value(self.family)}", f"preset = {_toml_value(self.preset)}"]
        lines.append("")
        tables = {
            "model": self.model,
            "train": dataclasses.asdict(self.train),
            "data": dataclasses.asdict(self.data),
            "masking": dataclasses.asdict(self.masking),
            "objectives": self.objectives,
            "generator": dataclasses.asdict(self.generator),
            "distill": dataclasses.asdict(self.distill),
            "init": dataclasses.asdict(self.init),
        }
        for name, values in tables.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
            lines.append("")
        return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {v!r} to TOML")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(names)}"
        )
    return cls(**values)


def _coerce(raw: str, current: Any, key: str) -> Any:
    """`--set` values are strings; convert them to the type the field already has."""
    try:
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if isinstance(current, int):
            return int(float(raw)) if "e" in raw.lower() else int(raw)
        if isinstance(current, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"--set {key}={raw}: expected {type(current).__name__}") from None
    try:
        return tomllib.loads(f"v = {raw}")["v"]  # numbers/bools for model fields; else a string
    except tomllib.TOMLDecodeError:
        return raw


def packaged_recipes() -> list[str]:
    """Names of the recipes that ship with bertforge (`--config NAME`)."""
    folder = resources.files("bertforge") / "recipes"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def recipe_text(source: str | Path) -> tuple[str, str]:
    """(TOML text, where it came from) of a recipe given as a file path or a packaged name."""
    path = Path(source)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    name = str(source).removesuffix(".toml")
    packaged = resources.files("bertforge") / "recipes" / f"{name}.toml"
    if "/" not in name and packaged.is_file():
        return packaged.read_text(encoding="utf-8"), f"recipe {name!r}"
    raise ConfigError(
        f"recipe '{source}' does not exist: no such file, and no packaged recipe of that name "
        f"({', '.join(packaged_recipes())})"
    )


def load_recipe(source: str | Path | Recipe | None, overrides: Sequence[str] = ()) -> Recipe:
    """Read a TOML recipe (a path, a packaged name, or a `Recipe` to start from; None: the
    defaults) and apply `key=value` / `table.key=value` overrides."""
    data: dict[str, Any] = {}
    where = "defaults"
    if isinstance(source, Recipe):
        text, where = source.to_toml(), "the given recipe"
    elif source is not None:
        text, where = recipe_text(source)
    if source is not None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{where} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - {"family", "preset", *TABLES})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid: family, preset, "
            f"{', '.join(TABLES)}"
        )
    tables = {name: dict(data.get(name, {})) for name in TABLES}
    top = {"family": data.get("family", "bert"), "preset": data.get("preset", "mini")}
    defaults = {
        "train": TrainConfig(),
        "data": DataConfig(),
        "masking": MaskingConfig(),
        "generator": GeneratorConfig(),
        "distill": DistillConfig(),
        "init": InitConfig(),
    }
    for item in overrides:
        key, sep, raw = item.partition("=")
        table, _, name = key.strip().rpartition(".")
        if not sep or not name:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=5e-4")
        if not table and name in top:
            top[name] = raw.strip()
            continue
        if table not in tables:
            raise ConfigError(f"--set {item!r}: table must be one of {', '.join(TABLES)}")
        if table == "objectives":
            current: Any = 1.0  # a weight; the names are checked with the whole recipe
        elif table == "model":
            fields = EncoderConfig.__dataclass_fields__
            if name not in fields:
                raise ConfigError(f"--set {item!r}: unknown model key {name!r}")
            current = fields[name].default
        else:
            if not hasattr(defaults[table], name):
                raise ConfigError(f"--set {item!r}: unknown {table} key {name!r}")
            current = getattr(defaults[table], name)
        tables[table][name] = _coerce(raw.strip(), current, key)
    if tables["masking"].get("mode") == FAMILY_MASKING:
        tables["masking"] = family_masking(top["family"], tables["masking"])
    recipe = Recipe(
        family=top["family"],
        preset=top["preset"],
        model=tables["model"],
        train=_build(TrainConfig, tables["train"], f"{where} [train]"),
        data=_build(DataConfig, tables["data"], f"{where} [data]"),
        masking=_build(MaskingConfig, tables["masking"], f"{where} [masking]"),
        objectives={k: float(v) for k, v in tables["objectives"].items()},
        generator=_build(GeneratorConfig, tables["generator"], f"{where} [generator]"),
        distill=_build(DistillConfig, tables["distill"], f"{where} [distill]"),
        init=_build(InitConfig, tables["init"], f"{where} [init]"),
    )
    if recipe.preset == INIT_PRESET and not recipe.init.model:
        raise ConfigError(
            f'{where}: preset = "{INIT_PRESET}" is the checkpoint\'s config of a run started '
            "with --init; start one with --init DIR, or name a size preset"
        )
    try:  # validate the family, preset, model overrides and objectives now
        recipe.encoder_config(vocab_size=30522, pad_token_id=0)
        pretraining_objectives(recipe.objectives, recipe.objective_options())
    except BertforgeError as e:
        raise ConfigError(f"{where}: {e}") from None
    return recipe


def family_masking(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """[masking] of `name`'s packaged recipe, with the keys in `given` (but its mode) on top."""
    packaged = family(name, "recipe").recipe
    base = tomllib.loads(recipe_text(packaged)[0]).get("masking", {}) if packaged else {}
    return {**base, **{k: v for k, v in given.items() if k != "mode"}}
