"""Model families as values (`spec.py`), one small file each, found by name; `family(name)`
looks one up and `register_family(spec)` adds a user's own without editing bertforge."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from bertforge.errors import CheckpointError, ConfigError
from bertforge.families.spec import TASK_KINDS, Classifier, Family, Heads, HFConfig, HFLayout


def _discover() -> dict[str, Family]:
    """Every family of the package: module `<model_type>.py` (`-` spelled `_`) defines it,
    so a new family is a new file and nothing else here changes."""
    found = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        values = vars(importlib.import_module(f"{__name__}.{module}")).values()
        for value in values:
            if isinstance(value, Family) and value.name.replace("-", "_") == module:
                found[value.name] = value
    return found


FAMILIES: dict[str, Family] = _discover()


def register_family(spec: Family, *, replace: bool = False) -> Family:
    """Make `spec` known by its name (the HF `model_type` its checkpoints carry): configs,
    checkpoints, pretraining and fine-tuning find it like a built-in family. A name already
    taken needs `replace=True`."""
    if not isinstance(spec, Family):
        raise ConfigError(f"register_family takes a Family, not {type(spec).__name__}")
    if spec.name != spec.hf.model_type:
        raise ConfigError(
            f"family {spec.name!r}: its name must be the model_type its checkpoints carry "
            f"({spec.hf.model_type!r})"
        )
    if spec.name in FAMILIES and not replace:
        raise ConfigError(
            f"a family named {spec.name!r} is already registered; pass replace=True to replace it"
        )
    FAMILIES[spec.name] = spec
    return spec


def family(name: Any, source: str = "config") -> Family:
    """The family whose HF `model_type` is `name`; an error listing the supported ones."""
    if name not in FAMILIES:
        raise CheckpointError(
            f"{source}: unknown model_type {name!r}; supported: {', '.join(FAMILIES)}"
        )
    return FAMILIES[name]


__all__ = [
    "FAMILIES",
    "TASK_KINDS",
    "Classifier",
    "Family",
    "HFConfig",
    "HFLayout",
    "Heads",
    "family",
    "register_family",
]
