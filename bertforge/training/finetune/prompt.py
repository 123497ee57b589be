"""`--strategy prompt` (LM-BFF style): classification as filling a masked word in a template,
scored by the MLM head's logits for one verbalizer word per label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bertforge.architectures import PreTrainingModel
from bertforge.errors import ConfigError
from bertforge.peft import PromptClassifier
from bertforge.peft.prompt import MASK
from bertforge.tasks.classification import Example
from bertforge.tokenization import Tokenizer

DEFAULT_TEMPLATE = "{text} It was [MASK]."
# Gao et al. (2021)'s words for SST-2; other tasks must name theirs.
DEFAULT_VERBALIZERS = {"SST-2": {"0": "terrible", "1": "great"}}


def prompt_config(
    source: str, labels: list[str] | None, template: str | None, verbalizer: str | None
) -> dict[str, Any]:
    """{"template", "verbalizer"} for TaskInfo from `--template` and `--verbalizer L=W,...`,
    with the verbalizer in label order (logit column i must be label i)."""
    if labels is None:
        raise ConfigError("--strategy prompt needs class labels; it cannot do regression")
    if verbalizer:
        pairs = [item.split("=", 1) for item in verbalizer.split(",") if item.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError(f"--verbalizer {verbalizer!r}: write label=word pairs with commas")
        words = {label.strip(): word.strip() for label, word in pairs}
    elif source in DEFAULT_VERBALIZERS:
        words = DEFAULT_VERBALIZERS[source]
    else:
        raise ConfigError("--strategy prompt needs --verbalizer LABEL=WORD,... for every label")
    missing = [label for label in labels if label not in words]
    if missing or len(words) != len(labels):
        raise ConfigError(f"--verbalizer must name exactly the labels {labels} (missing {missing})")
    return {"template": template or DEFAULT_TEMPLATE, "verbalizer": {k: words[k] for k in labels}}


def build(config: dict[str, Any], model_dir: Path, tokenizer: Tokenizer) -> PromptClassifier:
    """The checkpoint's encoder + MLM head behind the template; a checkpoint without an MLM
    head fails here with a CheckpointError saying so."""
    mlm = PreTrainingModel.from_pretrained(model_dir)
    return PromptClassifier(mlm, tokenizer, config["template"], config["verbalizer"])


def fill(config: dict[str, Any], tokenizer: Tokenizer, examples: list[Example]) -> list[Example]:
    """Examples with their text placed in the template (labels unchanged)."""
    if any(e.text_b is not None for e in examples):
        raise ConfigError("--strategy prompt takes single texts; this task has text pairs")
    template = config["template"].replace(MASK, tokenizer.mask_token or MASK)
    return [Example(template.format(text=e.text_a), None, e.label, e.guid) for e in examples]
