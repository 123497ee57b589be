"""`extend-vocab`: a checkpoint whose tokenizer holds a domain's most fragmented words whole,
ready for continued pretraining (`pretrain --init`).

The words are chosen on the domain's text (`tokenization/extend.py`); each new input
embedding row, and the MLM decoder's bias entry (the decoder is tied to the embeddings), is
the mean of the rows of the pieces the word used to be cut into, so the model starts where
the pieces were. Old ids and old rows are untouched: on text without the new words the
extended model computes exactly what the original did.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bertforge.architectures import PreTrainingModel
from bertforge.atomic import write_text
from bertforge.errors import CheckpointError, ConfigError, DataError
from bertforge.interop.hf import load_checkpoint, tokenizer_class
from bertforge.models.encoder import Encoder
from bertforge.tokenization import Tokenizer
from bertforge.tokenization.extend import (
    NewWord,
    changed_words,
    choose_words,
    count_words,
    extend_tokenizer,
    tokens_per_word,
)

log = logging.getLogger(__name__)

REPORT_FILE = "extend_vocab.json"


@dataclass(frozen=True)
class ExtendResult:
    output: Path
    added: list[NewWord]
    tokens_per_word_before: float  # on the input text
    tokens_per_word_after: float
    changed_words: int  # words without a new word that are cut differently (0 expected)


def extend_vocab(
    model: str | Path,
    inputs: Sequence[str | Path],
    add: int,
    output: str | Path,
    min_count: int = 2,
) -> ExtendResult:
    """Add up to `add` words of `inputs` to the tokenizer and embeddings of `model` (an HF
    checkpoint with its tokenizer) and write the result to `output`."""
    model, output = Path(model), Path(output)
    if add < 1:
        raise ConfigError(f"--add {add}: give the number of words to add, 1 or more")
    tokenizer = Tokenizer.from_pretrained(model)
    module = _pretrained(model)
    counts = count_words(tokenizer, inputs)
    words = choose_words(tokenizer, counts, add, min_count)
    if not words:
        raise DataError(
            f"no word of the input occurs {min_count}+ times cut into 2 or more pieces; "
            "give more text or lower --min-count"
        )
    if len(words) < add:
        log.warning("only %d words qualify (of --add %d)", len(words), add)
    extended = extend_tokenizer(tokenizer, words)
    changed = changed_words(tokenizer, extended, counts, words)
    if changed:
        log.warning(
            "%d words without a new word are now cut differently, e.g. %s",
            len(changed), changed[:5],
        )  # fmt: skip
    grown = with_new_rows(module, words, extended.vocab_size)
    grown.save_pretrained(output)
    extended.save_pretrained(output, tokenizer_class(grown.config, extended))
    before, after = tokens_per_word(tokenizer, counts), tokens_per_word(extended, counts)
    result = ExtendResult(output, words, before, after, len(changed))
    report = {
        "model": str(model),
        "added": len(words),
        "tokens_per_word": {"before": before, "after": after},
        "changed_words": len(changed),
        "words": [{"token": w.token, "pieces": len(w.pieces), "count": w.count} for w in words],
    }
    write_text(output / REPORT_FILE, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    log.info("added %d tokens; tokens per word on the input %.3f -> %.3f", len(words), before,
             after)  # fmt: skip
    return result


def _pretrained(path: Path) -> PreTrainingModel | Encoder:
    """The checkpoint as a pretraining model (its MLM/RTD heads) or a bare encoder."""
    ckpt = load_checkpoint(path)
    if ckpt.kind is not None:
        raise CheckpointError(
            f"'{path}' is a {ckpt.kind} model; extend the vocabulary of the pretrained "
            "checkpoint it came from, then continue pretraining and fine-tune"
        )
    if ckpt.parts & {"mlm", "rtd"}:
        return PreTrainingModel.from_pretrained(path)
    return Encoder.from_pretrained(path)


def with_new_rows(
    module: PreTrainingModel | Encoder, words: Sequence[NewWord], vocab_size: int
) -> PreTrainingModel | Encoder:
    """`module` with `vocab_size` rows (at least its own), the rows of `words` (ids from the
    end of the old tokenizer) the mean of their pieces', the MLM bias likewise."""
    config = module.config.replace(vocab_size=max(vocab_size, module.config.vocab_size))
    state = module.state_dict()
    first = vocab_size - len(words)
    for key in [k for k in state if k.endswith("embeddings.tokens.weight") or k == "mlm.bias"]:
        old = state[key]  # (V, E) or (V,)
        rows = torch.stack([old[list(w.pieces)].mean(0) for w in words])  # (N, E) or (N,)
        grown = torch.cat([old, old.new_zeros((config.vocab_size - len(old), *old.shape[1:]))])
        grown[first : first + len(words)] = rows
        state[key] = grown
    if isinstance(module, PreTrainingModel):
        rebuilt: nn.Module = PreTrainingModel(config, module.heads)
    else:
        rebuilt = Encoder(config, add_pooler=module.pooler is not None)
    rebuilt.load_state_dict(state)
    return rebuilt.eval()
