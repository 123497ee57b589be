"""`PretrainingCollator`: instances -> a padded, masked batch of torch tensors.

Input is a list of `Sample(index, epoch, instance)`: the example's index in the dataset and
the epoch it is drawn in are what seed its masks (`example_rng`), so the batch is a pure
function of its samples, whichever worker, rank or micro-batch builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import torch

from bertforge.errors import DataError
from bertforge.objectives.masking import (
    IGNORE_INDEX,
    Masker,
    MaskingConfig,
    MaskingVocab,
    example_rng,
)

if TYPE_CHECKING:
    from bertforge.tokenization import Tokenizer


class InstanceLike(Protocol):
    """What the collator reads from a dataset item (`bertforge.data.shards.Instance`).

    An item may also carry `word_ids` ((L,) int, equal ids = one word) for whole-word and span
    masking of pre-segmented text (e.g. Chinese); it is read with `getattr` when present.
    """

    tokens: np.ndarray  # (L,) int: special tokens included
    len_a: int  # tokens of type 0 from the start ([CLS] A [SEP])
    len_b: int  # tokens of type 1 after them (B [SEP]); 0 for single segments
    label: int  # NSP/SOP label: 0 IsNext / in order, 1 random / swapped, -1 none


class Sample(NamedTuple):
    index: int  # position of the instance in its dataset
    epoch: int  # epoch in which it is drawn (ignored for static masking)
    instance: InstanceLike


class PretrainingCollator:
    """Pads a list of samples to the longest (optionally to a multiple) and masks them.

    Returns int64 tensors: input_ids, token_type_ids, attention_mask, mlm_labels (all (B, T);
    labels are -100 where nothing is predicted) and nsp_labels (B,) (-1 where none).
    `type_ids=False` gives all-zero token types, for models with `type_vocab_size` 1 (RoBERTa).
    """

    def __init__(
        self,
        vocab: MaskingVocab,
        masking: MaskingConfig,
        seed: int,
        *,
        pad_to_multiple_of: int | None = None,
        type_ids: bool = True,
    ) -> None:
        self.vocab = vocab
        self.masking = masking
        self.seed = seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.type_ids = type_ids
        self._masker = Masker(masking, vocab)

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Tokenizer,
        masking: MaskingConfig,
        seed: int,
        *,
        pad_to_multiple_of: int | None = None,
        type_ids: bool = True,
    ) -> PretrainingCollator:
        """Build the vocabulary tables from `tokenizer` (once: they are per-id arrays)."""
        vocab = MaskingVocab.from_tokenizer(tokenizer)
        return cls(vocab, masking, seed, pad_to_multiple_of=pad_to_multiple_of, type_ids=type_ids)

    def __call__(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
        if not samples:
            raise DataError("cannot collate an empty batch")
        lengths = np.array([len(s.instance.tokens) for s in samples], dtype=np.int64)  # (B,)
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(samples), width), self.vocab.pad_id, dtype=np.int64)
        labels = np.full((len(samples), width), IGNORE_INDEX, dtype=np.int64)
        for row, (index, epoch, inst) in enumerate(samples):
            rng = example_rng(self.seed, 0 if self.masking.static else epoch, index)
            ids, lab = self._masker(
                self._checked(inst.tokens, index), rng, getattr(inst, "word_ids", None)
            )
            input_ids[row, : ids.size] = ids
            labels[row, : lab.size] = lab
        pos = np.arange(width)[None, :]  # (1, T)
        attention_mask = pos < lengths[:, None]  # (B, T)
        if self.type_ids:
            len_a = np.array([s.instance.len_a for s in samples])[:, None]
            len_b = np.array([s.instance.len_b for s in samples])[:, None]
            token_type_ids = (pos >= len_a) & (pos < len_a + len_b)  # (B, T)
        else:
            token_type_ids = np.zeros_like(attention_mask)
        return {
            "input_ids": torch.from_numpy(input_ids),
            "token_type_ids": torch.from_numpy(token_type_ids.astype(np.int64)),
            "attention_mask": torch.from_numpy(attention_mask.astype(np.int64)),
            "mlm_labels": torch.from_numpy(labels),
            "nsp_labels": torch.tensor([s.instance.label for s in samples], dtype=torch.int64),
        }

    def _checked(self, tokens: np.ndarray, index: int) -> np.ndarray:  # (L,) int64
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.vocab.vocab_size):
            raise DataError(
                f"example {index} has token ids outside the vocabulary (size "
                f"{self.vocab.vocab_size}); the shards were built with another tokenizer. "
                "Rebuild them with this tokenizer or train with the one they were built with"
            )
        return tokens
