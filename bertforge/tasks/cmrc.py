"""`cmrc`: Chinese extractive QA on CMRC 2018 (SQuAD format, character spans), scored by the
official CMRC 2018 EM and character F1 over the longest common run (0-100)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bertforge.tasks.registry import register_task
from bertforge.tasks.scoring import cmrc_evaluate
from bertforge.tasks.squad import DOC_STRIDE, SquadTask


class CmrcTask(SquadTask):
    name = "cmrc"
    aliases = ("cmrc2018",)
    command = "cmrc"
    help = "Chinese extractive QA on CMRC 2018; scored by the official EM and character F1"
    options = (DOC_STRIDE,)

    def default_files(self, options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        return {"train": ("cmrc2018_train.json",), "dev": ("cmrc2018_dev.json",)}

    def missing_hint(self) -> str:
        return "; without the train file, train on the trial set: --train-file cmrc2018_trial.json"

    def evaluate(self, examples: list[Any], answers: dict[str, str]) -> dict[str, Any]:
        return cmrc_evaluate(examples, answers)


register_task(CmrcTask())
