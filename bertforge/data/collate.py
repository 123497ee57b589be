"""`PretrainingCollator`: instances -> a padded batch of torch tensors with the fields the
run's objectives read (`Objective.fields`): `mlm_labels` (masking the input ids),
`nsp_labels`, `sbo_targets` (SpanBERT's span boundary targets) and `sample_uniforms` (the
draws ELECTRA's generator samples its replacements with).

Input is a list of `Sample(index, epoch, instance)`: the example's index in the dataset and
the epoch it is drawn in are what seed its masks (`example_rng`), so the batch is a pure
function of its samples, whichever worker, rank or micro-batch builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import torch

from bertforge.constants import IGNORE_INDEX
from bertforge.errors import ConfigError, DataError
from bertforge.objectives.masking import (
    Masker,
    MaskingConfig,
    MaskingVocab,
    Selection,
    example_rng,
)
from bertforge.objectives.sbo import SBO_KEYS

if TYPE_CHECKING:
    from bertforge.tokenization import Tokenizer

# The objective fields a collator can produce: masked-LM labels (the input ids are masked to
# match), sentence-pair labels (from the instances), span boundary targets (from the masked
# spans: batch keys `SBO_KEYS`) and one uniform draw per token for sampling.
FIELDS = ("mlm_labels", "nsp_labels", "sbo_targets", "sample_uniforms")
# What a collator makes when not told: BERT's two objectives.
DEFAULT_FIELDS = ("mlm_labels", "nsp_labels")


class InstanceLike(Protocol):
    """What the collator reads from a dataset item (`bertforge.data.instances.Instance`).

    An item may also carry `word_ids` ((L,) int, equal ids = one word) for whole-word and span
    masking of pre-segmented text (e.g. Chinese), and `unit_ids` (knowledge-masking units);
    they are read with `getattr` when present.
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
    """Pads a list of samples to the longest (optionally to a multiple) and adds `fields`.

    Returns int64 tensors: input_ids, token_type_ids, attention_mask (all (B, T)), then
    mlm_labels ((B, T), -100 where nothing is predicted; input_ids masked to match) and
    nsp_labels ((B,), -1 where none) when asked for. "sbo_targets" (span masking only) adds
    sbo_left, sbo_right and sbo_offset ((B, T) each, -100 where nothing is predicted): for a
    predicted position i in a span from token s to token e, the positions s - 1 and e + 1 of
    the span's boundary tokens and i - s. "sample_uniforms" adds (B, T) float32 draws in
    [0, 1) from each example's own generator, after its masks. `type_ids=False` gives
    all-zero token types, for models with `type_vocab_size` 1 (RoBERTa). `separator` (the id
    full-sentences packs put between documents) adds `document_ids` ((B, T): 1 + the
    separators before each token, 0 at padding), for packs whose documents attend only to
    themselves.
    """

    def __init__(
        self,
        vocab: MaskingVocab,
        masking: MaskingConfig,
        seed: int,
        *,
        fields: Sequence[str] = DEFAULT_FIELDS,
        pad_to_multiple_of: int | None = None,
        type_ids: bool = True,
        separator: int | None = None,
    ) -> None:
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise ConfigError(
                f"the objectives need batch field(s) {', '.join(unknown)} that the "
                f"pretraining collator cannot make (it makes {', '.join(FIELDS)})"
            )
        # Boundaries exist only around SpanBERT's spans: placed apart, one draw per span.
        if "sbo_targets" in fields and masking.mode != "span":
            raise ConfigError(
                "the span boundary objective (batch field sbo_targets) needs span masking; "
                f'set [masking] mode = "span" (it is {masking.mode!r})'
            )
        for field in ("sbo_targets", "sample_uniforms"):
            if field in fields and "mlm_labels" not in fields:
                raise ConfigError(
                    f"batch field {field} serves the masked tokens: ask for mlm_labels too"
                )
        self.vocab = vocab
        self.masking = masking
        self.seed = seed
        self.fields = tuple(fields)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.type_ids = type_ids
        self.separator = separator
        self._masker = Masker(masking, vocab)

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Tokenizer,
        masking: MaskingConfig,
        seed: int,
        **options: Any,
    ) -> PretrainingCollator:
        """Build the vocabulary tables from `tokenizer` (once: they are per-id arrays)."""
        return cls(MaskingVocab.from_tokenizer(tokenizer), masking, seed, **options)

    def __call__(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
        if not samples:
            raise DataError("cannot collate an empty batch")
        lengths = np.array([len(s.instance.tokens) for s in samples], dtype=np.int64)  # (B,)
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        masked = "mlm_labels" in self.fields
        input_ids = np.full((len(samples), width), self.vocab.pad_id, dtype=np.int64)
        labels = np.full((len(samples), width), IGNORE_INDEX, dtype=np.int64)
        spans = None  # (3, B, T): left boundary, right boundary, offset in the span
        if "sbo_targets" in self.fields:
            spans = np.full((len(SBO_KEYS), len(samples), width), IGNORE_INDEX, dtype=np.int64)
        uniforms = None  # (B, T)
        if "sample_uniforms" in self.fields:
            uniforms = np.zeros((len(samples), width), dtype=np.float32)
        documents = None  # (B, T)
        if self.separator is not None:
            documents = np.zeros((len(samples), width), dtype=np.int64)
        for row, (index, epoch, inst) in enumerate(samples):
            ids = self._checked(inst.tokens, index)
            if documents is not None:  # a separator ends its document: count those before
                ends = np.cumsum(ids == self.separator)
                documents[row, : ids.size] = 1 + ends - (ids == self.separator)
            if masked:
                rng = example_rng(self.seed, 0 if self.masking.static else epoch, index)
                words, units = getattr(inst, "word_ids", None), getattr(inst, "unit_ids", None)
                ids, lab, sel = self._masker.mask(ids, rng, words, units)
                labels[row, : lab.size] = lab
                if spans is not None:
                    spans[:, row, : lab.size] = span_boundaries(sel, lab.size)
                if uniforms is not None:  # drawn after the masks, which stay as they were
                    uniforms[row, : lab.size] = rng.random(lab.size, dtype=np.float32)
            input_ids[row, : ids.size] = ids
        pos = np.arange(width)[None, :]  # (1, T)
        attention_mask = pos < lengths[:, None]  # (B, T)
        if self.type_ids:
            len_a = np.array([s.instance.len_a for s in samples])[:, None]
            len_b = np.array([s.instance.len_b for s in samples])[:, None]
            token_type_ids = (pos >= len_a) & (pos < len_a + len_b)  # (B, T)
        else:
            token_type_ids = np.zeros_like(attention_mask)
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "token_type_ids": torch.from_numpy(token_type_ids.astype(np.int64)),
            "attention_mask": torch.from_numpy(attention_mask.astype(np.int64)),
        }
        if masked:
            batch["mlm_labels"] = torch.from_numpy(labels)
        if "nsp_labels" in self.fields:
            pair = [s.instance.label for s in samples]
            batch["nsp_labels"] = torch.tensor(pair, dtype=torch.int64)
        if spans is not None:
            batch.update(zip(SBO_KEYS, torch.from_numpy(spans).unbind(0), strict=True))
        if uniforms is not None:
            batch["sample_uniforms"] = torch.from_numpy(uniforms)
        if documents is not None:
            batch["document_ids"] = torch.from_numpy(documents)
        return batch

    def _checked(self, tokens: np.ndarray, index: int) -> np.ndarray:  # (L,) int64
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.vocab.vocab_size):
            raise DataError(
                f"example {index} has token ids outside the vocabulary (size "
                f"{self.vocab.vocab_size}); the shards were built with another tokenizer. "
                "Rebuild them with this tokenizer or train with the one they were built with"
            )
        return tokens


def span_boundaries(sel: Selection, length: int) -> np.ndarray:  # (3, L) int64
    """SpanBERT's targets for one sequence of `length` tokens: for each selected position i of
    a span (group) from token s to token e, s - 1, e + 1 and i - s; -100 elsewhere."""
    out = np.full((len(SBO_KEYS), length), IGNORE_INDEX, dtype=np.int64)
    pos, groups = sel.positions, sel.groups
    if groups is None:  # nothing to mask in the sequence
        return out
    n_spans = int(groups.max(initial=-1)) + 1
    first = np.full(n_spans, length, dtype=np.int64)
    last = np.full(n_spans, -1, dtype=np.int64)
    np.minimum.at(first, groups, pos)
    np.maximum.at(last, groups, pos)
    start, end = first[groups], last[groups]  # (K,)
    # Spans are never adjacent, so both boundaries are visible tokens; the clamps only matter
    # for a sequence without [CLS] / [SEP] around its words.
    out[0, pos] = np.maximum(start - 1, 0)
    out[1, pos] = np.minimum(end + 1, length - 1)
    out[2, pos] = pos - start
    return out
