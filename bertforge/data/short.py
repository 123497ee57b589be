"""`ShortSequences`: single-segment shards seen as shorter sequences, for a sequence-length
warmup (`train.short_seq_len`).

A small model starts with nearly uniform attention, so each position sees the mean of its
sequence; at 128 tokens that mean says little about a masked word and training sits on the
unigram plateau, while the same tokens cut into 32-token sequences make it local
(docs/design.md). Each instance's body (the tokens between its leading and trailing specials)
is cut into the fewest near-equal pieces that fit `length` with the specials around them, so
no piece is a short leftover; every piece is one example, with the word and unit ids of its
tokens. Pair instances (NSP/SOP) have no such cut: they are refused.
"""

from __future__ import annotations

import numpy as np

from bertforge.data.instances import PAIR_OBJECTIVES, Instance
from bertforge.data.shards import ShardedDataset
from bertforge.errors import ConfigError


class ShortSequences:
    """Examples of at most `length` tokens cut from the instances of a single-segment split.

    Example j is piece k of instance i, with j running over instances first-to-last and
    pieces in order; `len(self)` / `len(dataset)` is the mean number of pieces per instance.
    """

    def __init__(self, dataset: ShardedDataset, length: int) -> None:
        manifest = dataset.manifest
        objective = manifest["objective"]
        if objective in PAIR_OBJECTIVES:
            raise ConfigError(
                f"train.short_seq_len cuts single-segment sequences, and '{dataset.directory}' "
                f"holds {objective!r} sentence pairs; build the data with --objective "
                "full-sentences (or single), or drop train.short_seq_len"
            )
        # The specials around a single segment, e.g. [CLS] ... [SEP]: every piece keeps them.
        self.pre, self.suf = (len(ids) for ids in manifest["layout"]["single"])
        body = length - self.pre - self.suf  # tokens of text per piece
        if body < 1 or length >= int(manifest["max_seq_len"]):
            raise ConfigError(
                f"train.short_seq_len={length}: it must leave room for text beside the "
                f"{self.pre + self.suf} special tokens and be below the data's "
                f"max_seq_len ({manifest['max_seq_len']})"
            )
        rows = dataset.rows
        text = np.maximum(rows[:, 1] + rows[:, 2] - self.pre - self.suf, 1)  # (N,)
        self.dataset = dataset
        self.pieces = -(-text // body)  # (N,) pieces per instance
        self._ends = np.cumsum(self.pieces)  # (N,) examples up to and including instance i

    def __len__(self) -> int:
        return int(self._ends[-1]) if self._ends.size else 0

    def __getitem__(self, j: int) -> Instance:
        if not 0 <= j < len(self):
            raise IndexError(f"short example {j} out of range for {len(self)} examples")
        i = int(np.searchsorted(self._ends, j, side="right"))
        k = j - (int(self._ends[i - 1]) if i else 0)
        inst = self.dataset[i]
        pre, suf = self.pre, self.suf
        n_text = inst.tokens.size - pre - suf
        # Piece k of n near-equal pieces: [k * n_text // n, (k + 1) * n_text // n).
        n = int(self.pieces[i])
        lo, hi = pre + k * n_text // n, pre + (k + 1) * n_text // n
        keep = np.r_[0:pre, lo:hi, inst.tokens.size - suf : inst.tokens.size]  # (l,)
        tokens = inst.tokens[keep]
        # Ids stay non-decreasing, and a word cut at a piece's edge stays one unit in it.
        words = None if inst.word_ids is None else inst.word_ids[keep]
        units = None if inst.unit_ids is None else inst.unit_ids[keep]
        return Instance(tokens, tokens.size, 0, -1, words, units)
