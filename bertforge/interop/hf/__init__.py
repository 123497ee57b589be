"""Hugging Face checkpoints in and out: the only code that applies HF key names (the names
themselves are each family's `HFLayout`, in `bertforge/families/`).

Importing this package installs `HFFormat` as the format behind every module's
`from_pretrained` / `save_pretrained` (`bertforge/pretrained.py`).
"""

from bertforge.config import EncoderConfig
from bertforge.families import family
from bertforge.interop.hf.format import (
    Checkpoint,
    HFFormat,
    load_checkpoint,
    load_config,
    load_state,
)
from bertforge.pretrained import use_format
from bertforge.tokenization import Tokenizer

use_format(HFFormat())


def tokenizer_class(config: EncoderConfig, tokenizer: Tokenizer) -> str | None:
    """The transformers tokenizer class a checkpoint of this family names, when the tokenizer
    is of the family's kind (a RoBERTa may be trained on WordPiece: then the generic one)."""
    fam = family(config.model_type)
    return fam.hf.tokenizer_class if tokenizer.kind == fam.tokenizer else None


__all__ = [
    "Checkpoint",
    "HFFormat",
    "load_checkpoint",
    "load_config",
    "load_state",
    "tokenizer_class",
]
