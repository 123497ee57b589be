"""Loading helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path

import torch

from bertforge.config import EncoderConfig
from bertforge.errors import TokenizerError
from bertforge.tokenization import Tokenizer


def load_tokenizer(model_dir: Path, tokenizer_dir: Path | None, config: EncoderConfig) -> Tokenizer:
    """The tokenizer saved with the model (or `--tokenizer DIR`), checked to fit the model."""
    source = tokenizer_dir or model_dir
    try:
        tok = Tokenizer.from_pretrained(source)
    except TokenizerError as e:
        if tokenizer_dir is None:
            raise TokenizerError(f"{e} (pass --tokenizer DIR if it is saved elsewhere)") from None
        raise
    config.check_vocab(tok.vocab_size, f"model '{model_dir}' with tokenizer '{source}'")
    return tok


def device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
