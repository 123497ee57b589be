"""Model families as values (`spec.py`), one small file each; `family(name)` finds one."""

from __future__ import annotations

from typing import Any

from bertforge.errors import CheckpointError
from bertforge.families.albert import ALBERT
from bertforge.families.bert import BERT
from bertforge.families.distilbert import DISTILBERT
from bertforge.families.electra import ELECTRA
from bertforge.families.nezha import NEZHA
from bertforge.families.roberta import ROBERTA
from bertforge.families.spec import TASK_KINDS, Classifier, Family, Heads, HFConfig, HFLayout

FAMILIES: dict[str, Family] = {
    f.name: f for f in (BERT, ROBERTA, ALBERT, DISTILBERT, ELECTRA, NEZHA)
}


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
]
