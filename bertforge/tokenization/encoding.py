"""`BatchEncoding`: the dict a tokenizer call returns, plus the encodings behind it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tokenizers import Encoding

from bertforge.errors import TokenizerError

TENSOR_TYPES = ("pt", "np")


class BatchEncoding(dict[str, Any]):
    """input_ids / token_type_ids / attention_mask (+ optional keys) as lists, or tensors.

    Keys are also readable as attributes (`batch.input_ids`), as in transformers.
    """

    def __init__(self, data: Mapping[str, Any], encodings: Sequence[Encoding] = ()) -> None:
        super().__init__(data)
        self.encodings: list[Encoding] = list(encodings)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not real attributes; pickle relies on AttributeError.
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _encoding(self, i: int) -> Encoding:
        if not 0 <= i < len(self.encodings):
            raise TokenizerError(
                f"batch index {i} is out of range for a batch of {len(self.encodings)} encodings"
            )
        return self.encodings[i]

    def tokens(self, i: int = 0) -> list[str]:
        """Token strings of row `i`, special and padding tokens included."""
        return self._encoding(i).tokens

    def word_ids(self, i: int = 0) -> list[int | None]:
        """For each token of row `i`, the index of the word it came from (None for specials)."""
        return self._encoding(i).word_ids

    def sequence_ids(self, i: int = 0) -> list[int | None]:
        """For each token of row `i`: 0 for the first text, 1 for the pair, None for specials."""
        return self._encoding(i).sequence_ids

    def to(self, device: Any) -> BatchEncoding:
        """Move every torch tensor to `device` in place; returns self for chaining."""
        for key, value in self.items():
            if hasattr(value, "to"):  # torch tensors only; lists and numpy arrays stay
                self[key] = value.to(device)
        return self


_ENCODING_ATTRS = {
    "input_ids": "ids",
    "token_type_ids": "type_ids",
    "attention_mask": "attention_mask",
    "special_tokens_mask": "special_tokens_mask",
    "offset_mapping": "offsets",
}


def assemble(
    encodings: list[Encoding],
    keys: list[str],
    *,
    overflowing: bool,
    tensor_type: str | None,
    batched: bool,
) -> BatchEncoding:
    """Build the call result the way transformers' fast tokenizers do.

    Overflowing windows become extra rows (with overflow_to_sample_mapping); a single unbatched
    text gets its batch axis removed unless tensors were asked for.
    """
    rows: list[Encoding] = []
    sample_of_row: list[int] = []
    for i, enc in enumerate(encodings):
        group = [enc, *enc.overflowing] if overflowing else [enc]
        rows += group
        sample_of_row += [i] * len(group)
    data: dict[str, Any] = {
        key: [getattr(row, _ENCODING_ATTRS[key]) for row in rows] for key in ["input_ids", *keys]
    }
    if overflowing:
        data["overflow_to_sample_mapping"] = sample_of_row
    if tensor_type is not None:
        data = as_tensors(data, tensor_type)
    elif not batched and not overflowing:
        data = {key: value[0] for key, value in data.items()}
    return BatchEncoding(data, rows)


def as_tensors(data: dict[str, list[Any]], tensor_type: str) -> dict[str, Any]:
    """Stack per-row lists into int64 arrays (`np`) or tensors (`pt`)."""
    out: dict[str, Any] = {}
    for key, rows in data.items():
        lengths = {len(row) for row in rows if isinstance(row, list)}
        if len(lengths) > 1:
            raise TokenizerError(
                f"cannot make {tensor_type} tensors from rows of different lengths "
                f"{sorted(lengths)[:2]}...; pass padding=True (and truncation=True) to the call"
            )
        array = np.asarray(rows, dtype=np.int64)
        if tensor_type == "pt":
            import torch  # deferred: tokenizing for data prep should not pay for importing torch

            out[key] = torch.from_numpy(array)
        else:
            out[key] = array
    return out
