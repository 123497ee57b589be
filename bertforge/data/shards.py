"""The shard format (docs/design.md): write it, verify it, read it.

An output directory holds, per shard XXXXX (numbered across splits in write order):
- `tokens-XXXXX.bin`: flat token ids with special tokens inserted, uint16 if the vocabulary
  has fewer than 65,536 ids else uint32;
- `index-XXXXX.npy`: int64 (N, 4) rows (offset in tokens within the shard, len_a incl. its
  specials, len_b incl. its specials or 0, label);
- `words-XXXXX.bin` (builds with a word segmenter, format 2): one uint8 of flags per token,
  parallel to the tokens; `WORD_START` marks the first token of a word (special tokens
  included), so an instance's word ids are the running count of starts, and `UNIT_START`
  the first of a knowledge-masking unit (builds with entities, manifest `unit_starts`);
- `manifest.json`, written last and atomically: without a valid one the directory is an
  incomplete build. It holds format_version, the build parameters (objective, max_seq_len,
  seed, short_seq_prob, tokenizer_fingerprint, `build`: inputs and the other options),
  tokenizer_kind, vocab_size, token_dtype, special_ids, `layout` (the specials around the
  segments), `shards` (split, file names, byte sizes, sha256, instances, tokens_count) and
  `counts`.
Every file is written beside its target and renamed into place. One module of some 350
lines: the writer, the manifest checks and the reader are the one definition of the format.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np

from bertforge.atomic import atomic_path
from bertforge.data.instances import Draft, Instance
from bertforge.errors import DataError

# 2: optional per-token word flags (`words-*.bin`).
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
SPLITS = ("train", "eval")
_FILES = ("tokens", "index", "words")  # the files a shard may have, as manifest keys
_OURS = re.compile(r"((tokens|words)-\d{5}\.bin|index-\d{5}\.npy|manifest\.json)(\..*\.tmp)?")

WORD_START = 1  # flag: the token begins a word
UNIT_START = 2  # flag: it begins a unit of knowledge masking (an entity, or a word outside one)
# While a build runs, a token's flags ride above its id in int64 arrays, so that instance
# making (which only cuts and joins token arrays) carries them along untouched.
FLAG_SHIFT = 32
_ID_MASK = (1 << FLAG_SHIFT) - 1


def pack_flags(ids: np.ndarray, flags: np.ndarray) -> np.ndarray:  # (N,) int64
    return ids.astype(np.int64) | (flags.astype(np.int64) << FLAG_SHIFT)


def unpack_flags(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # ids, flags (uint8)
    return packed & _ID_MASK, (packed >> FLAG_SHIFT).astype(np.uint8)


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size < 2**16 else np.uint32)


def remove_build(directory: Path) -> int:
    """Delete our shard, manifest and temporary files (nothing else); returns how many."""
    removed = 0
    for path in directory.iterdir() if directory.is_dir() else ():
        if _OURS.fullmatch(path.name.lstrip(".")) and path.is_file():
            path.unlink()
            removed += 1
    return removed


@dataclass(frozen=True)
class Layout:
    """Where special tokens go, read from the tokenizer's post-processor: [CLS] A [SEP] B [SEP]
    for WordPiece, <s> A </s></s> B </s> for RoBERTa BPE."""

    single: tuple[np.ndarray, np.ndarray]  # prefix, suffix
    pair: tuple[np.ndarray, np.ndarray, np.ndarray]  # prefix, middle, suffix
    segment_b_type: int  # token type id of B (0 for RoBERTa)

    @classmethod
    def from_backend(cls, backend: Any) -> Layout:
        """`backend` is a `tokenizers.Tokenizer`."""
        # (post_process() on separate encodings loses A's sequence ids; a pair encode keeps them)
        pair = backend.encode("a", "b", add_special_tokens=True)
        single = backend.encode("a", add_special_tokens=True)
        pre, mid, post = _specials_around(pair.ids, pair.sequence_ids, 3)
        s_pre, s_post = _specials_around(single.ids, single.sequence_ids, 2)
        b_types = [t for t, s in zip(pair.type_ids, pair.sequence_ids, strict=True) if s == 1]
        return cls((s_pre, s_post), (pre, mid, post), int(b_types[0]) if b_types else 1)

    @property
    def single_specials(self) -> int:
        return sum(len(x) for x in self.single)

    @property
    def pair_specials(self) -> int:
        return sum(len(x) for x in self.pair)

    def to_json(self) -> dict[str, Any]:
        return {
            "single": [x.tolist() for x in self.single],
            "pair": [x.tolist() for x in self.pair],
            "segment_b_type": self.segment_b_type,
        }


def _specials_around(ids: list[int], seq_ids: list[int | None], groups: int) -> list[np.ndarray]:
    """Split the special ids into the runs before, between and after the sequences."""
    runs: list[list[int]] = [[]]
    for tid, seq in zip(ids, seq_ids, strict=True):
        if seq is None:
            runs[-1].append(tid)
        elif len(runs) <= seq + 1:
            runs.append([])
    runs += [[] for _ in range(groups - len(runs))]
    return [np.array(r, dtype=np.int32) for r in runs]


class ShardWriter:
    """Appends drafts of one split to shards of about `shard_tokens` tokens each.

    With `special_ids` (a build with a word segmenter) the drafts' tokens carry packed flags,
    written to `words-*.bin`; special tokens always start a word."""

    def __init__(
        self,
        directory: Path,
        split: str,
        layout: Layout,
        dtype: np.dtype,
        shard_tokens: int,
        max_seq_len: int,
        numbers: count,
        entries: list[dict[str, Any]],
        special_ids: list[int] | None = None,
    ) -> None:
        self.directory, self.split, self.layout, self.dtype = directory, split, layout, dtype
        self.shard_tokens, self.max_seq_len = shard_tokens, max_seq_len
        self._numbers, self._entries = numbers, entries  # shared between the splits' writers
        self._special: np.ndarray | None = None  # (V,) bool lookup, with a segmenter
        if special_ids is not None:
            self._special = np.zeros(max(special_ids, default=0) + 1, dtype=bool)
            self._special[special_ids] = True
        self._buf: np.ndarray | None = None  # allocated on first use; pages fill as written
        self._flags: np.ndarray | None = None  # (same) word flags, with a segmenter
        self._pos = 0
        self._rows: list[tuple[int, int, int, int]] = []
        self.tokens = 0  # written so far, buffered ones included
        self.instances = 0

    def add(self, draft: Draft) -> None:
        if self._buf is None:
            self._buf = np.empty(self.shard_tokens + self.max_seq_len, dtype=self.dtype)
            if self._special is not None:
                self._flags = np.empty(self.shard_tokens + self.max_seq_len, dtype=np.uint8)
        if draft.b:
            pre, mid, post = self.layout.pair
            parts = (pre, *draft.a, mid, *draft.b, post)
            len_a = len(pre) + sum(map(len, draft.a)) + len(mid)
        else:
            parts = (self.layout.single[0], *draft.a, self.layout.single[1])
            len_a = 0
        size = sum(map(len, parts))
        if size > self.max_seq_len:
            raise AssertionError(f"instance of {size} tokens > max_seq_len {self.max_seq_len}")
        end = self._pos + size
        if self._flags is None:
            np.concatenate(parts, out=self._buf[self._pos : end], casting="unsafe")
        else:
            ids, flags = unpack_flags(np.concatenate(parts, dtype=np.int64))
            assert self._special is not None
            special = ids < self._special.size
            special[special] = self._special[ids[special]]
            flags[special] |= WORD_START | UNIT_START
            self._buf[self._pos : end] = ids
            self._flags[self._pos : end] = flags
        len_a = len_a or size
        self._rows.append((self._pos, len_a, size - len_a, draft.label))
        self._pos = end
        self.tokens += size
        self.instances += 1
        if self._pos >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        """Write the buffered instances as one shard (no-op when empty)."""
        if not self._rows or self._buf is None:
            return
        number = next(self._numbers)
        tokens = self._buf[: self._pos]
        index = io.BytesIO()
        np.save(index, np.array(self._rows, dtype=np.int64).reshape(-1, 4))
        entry = {
            "split": self.split,
            **_write(self.directory / f"tokens-{number:05d}.bin", memoryview(tokens), "tokens"),
            **_write(self.directory / f"index-{number:05d}.npy", index.getbuffer(), "index"),
            "instances": len(self._rows),
            "tokens_count": self._pos,
        }
        if self._flags is not None:
            flags = memoryview(self._flags[: self._pos])
            entry.update(_write(self.directory / f"words-{number:05d}.bin", flags, "words"))
        self._entries.append(entry)
        self._pos, self._rows = 0, []

    def close(self) -> None:
        self.flush()
        self._buf = self._flags = None


def _write(path: Path, data: memoryview, key: str) -> dict[str, Any]:
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        fh.write(data)
    return {
        key: path.name,
        f"{key}_bytes": data.nbytes,
        f"{key}_sha256": hashlib.sha256(data).hexdigest(),
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    with atomic_path(directory / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest, checked for shape and for shard files of the recorded sizes."""
    path = Path(directory) / MANIFEST
    incomplete = f"'{directory}' is an incomplete build ({{}}); re-run build-data"
    if not path.is_file():
        raise DataError(incomplete.format(f"no {MANIFEST}"))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        version = manifest["format_version"]
        files = [
            (s[key], s[f"{key}_bytes"]) for s in manifest["shards"] for key in _FILES if key in s
        ]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(incomplete.format(f"{MANIFEST} is unreadable: {e!r}")) from None
    if version != FORMAT_VERSION:
        raise DataError(
            f"'{path}' has format_version {version}; this bertforge reads {FORMAT_VERSION}: "
            "re-run build-data"
        )
    for name, size in files:
        file = Path(directory) / name
        if not file.is_file() or file.stat().st_size != size:
            raise DataError(incomplete.format(f"{name} is missing or truncated"))
    return manifest


def verify_file(path: Path, sha256: str) -> None:
    """Raise DataError naming `path` when its content does not match the manifest."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise DataError(
            f"shard '{path}' is corrupt (sha256 differs from manifest.json); re-run build-data "
            "with --force"
        )


def check_tokenizer(directory: Path, manifest: dict[str, Any], tokenizer: Any) -> None:
    """DataError unless `tokenizer` (a `Tokenizer`) is the one the build in `directory` (its
    `manifest`) was made with."""
    built = manifest["tokenizer_fingerprint"]
    if tokenizer.fingerprint() != built:
        raise DataError(
            f"data in '{directory}' was built with a different tokenizer (fingerprint "
            f"{built[:12]}..., given {tokenizer.fingerprint()[:12]}...); rebuild or pass "
            "the matching tokenizer"
        )


class ShardedDataset:
    """The instances of one split of a build, memory-mapped.

    With `verify`, every shard file of the split is checked against the manifest's sha256
    first; a shard that fails is never used.
    """

    def __init__(self, directory: str | Path, split: str = "train", verify: bool = True):
        if split not in SPLITS:
            raise DataError(f"split {split!r}; use one of {', '.join(SPLITS)}")
        self.directory = Path(directory)
        self.split = split
        self.manifest = read_manifest(self.directory)
        self._shards = [s for s in self.manifest["shards"] if s["split"] == split]
        if verify:
            for shard in self._shards:
                for key in (k for k in _FILES if k in shard):
                    verify_file(self.directory / shard[key], shard[f"{key}_sha256"])
        self._index = [np.load(self.directory / s["index"]) for s in self._shards]
        sizes = [len(ix) for ix in self._index]
        self._ends = np.cumsum(sizes, dtype=np.int64)
        self._tokens: list[np.ndarray] | None = None
        self._words: list[np.ndarray | None] | None = None

    def _maps(self) -> list[np.ndarray]:
        # Opened lazily so that pickling (DataLoader workers with spawn) never copies shards.
        if self._tokens is None:
            dtype = np.dtype(self.manifest["token_dtype"])
            self._tokens = [
                np.memmap(self.directory / s["tokens"], dtype=dtype, mode="r") for s in self._shards
            ]
            self._words = [
                np.memmap(self.directory / s["words"], dtype=np.uint8, mode="r")
                if "words" in s
                else None
                for s in self._shards
            ]
        return self._tokens

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokens": None, "_words": None}

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, i: int) -> Instance:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"instance {i} out of range for {n} instances")
        i %= n
        shard = int(np.searchsorted(self._ends, i, side="right"))
        row = self._index[shard][i - (int(self._ends[shard - 1]) if shard else 0)]
        offset, len_a, len_b, label = (int(x) for x in row)
        end = offset + len_a + len_b
        tokens = np.asarray(self._maps()[shard][offset:end], np.int64)
        words = self._words[shard] if self._words is not None else None
        if words is None:
            return Instance(tokens, len_a, len_b, label)
        flags = np.asarray(words[offset:end])
        word_ids = np.cumsum(flags & WORD_START, dtype=np.int64) - 1
        unit_ids = None
        if self.manifest.get("unit_starts"):
            unit_ids = np.cumsum((flags & UNIT_START) > 0, dtype=np.int64) - 1
        return Instance(tokens, len_a, len_b, label, word_ids, unit_ids)

    def token_arrays(self) -> list[np.ndarray]:
        """The split's flat token ids, one memory-mapped array per shard."""
        return self._maps()

    @property
    def rows(self) -> np.ndarray:
        """(N, 4) int64 index rows of the split, in order: offset (within the row's shard),
        len_a, len_b, label. Lengths for bucketing: `rows[:, 1] + rows[:, 2]`."""
        return np.concatenate(self._index) if self._index else np.zeros((0, 4), dtype=np.int64)

    def check_tokenizer(self, tokenizer: Any) -> None:
        """DataError unless `tokenizer` (a `Tokenizer`) is the one the data was built with."""
        check_tokenizer(self.directory, self.manifest, tokenizer)
