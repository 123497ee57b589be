"""Pretraining recipes: TOML files with a `family` and a size `preset`, [model], [train],
[masking] and [objectives] tables, and `--set` overrides.

Recipes ship inside the package (`bertforge/recipes/*.toml`): `--config bert-mini` finds one
by name wherever bertforge is installed; any other value is read as a path.

Unknown keys are errors (a typo must not silently fall back to a default), and the resolved
recipe is written back as TOML into the run directory, so a run can be reproduced from it.
The tables' fields and checks live in `recipe_tables.py`; this module reads, overrides and
writes whole recipes.
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
from bertforge.pretraining.recipe_tables import (
    DataConfig,
    DistillConfig,
    GeneratorConfig,
    InitConfig,
    TrainConfig,
)

TABLES = ("model", "train", "data", "masking", "objectives", "generator", "distill", "init")
# DistilBERT's loss weights (Sanh et al., 2019): soft targets, MLM, hidden-state cosine; what
# `distill` trains unless the recipe names its objectives.
DISTILBERT_LOSS = {"distill_ce": 5.0, "mlm": 2.0, "distill_cos": 1.0}
# The preset of a run started from a checkpoint: [model] holds its whole config (`init.py`).
INIT_PRESET = "init"
# [masking] mode = "family": the masking of the family's packaged recipe, under the other
# [masking] keys the recipe sets.
FAMILY_MASKING = "family"


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
