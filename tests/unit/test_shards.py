"""The shard format: layout of specials, round trips, verification, resume and determinism."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from itertools import count
from pathlib import Path

import numpy as np
import pytest

from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.instances import Draft
from bertforge.data.shards import (
    FORMAT_VERSION,
    WORD_START,
    Layout,
    ShardedDataset,
    ShardWriter,
    pack_flags,
    token_dtype,
    write_manifest,
)
from bertforge.errors import DataError
from bertforge.tokenization import Tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> Path:
    """About 150 documents of 12 lines of Python's docs each, blank lines between them."""
    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    blocks = ["\n".join(doc_lines[i : i + 12]) for i in range(0, 1800, 12)]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def minilm(minilm_path: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def bpe(corpus: Path) -> Tokenizer:
    return train_tokenizer([corpus], "bpe", 1000)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, corpus: Path, minilm: Tokenizer) -> Path:
    out = tmp_path_factory.mktemp("built")
    build_data(minilm, [corpus], out, BuildConfig(eval_fraction=0.1, shard_size_tokens=20_000))
    return out


def test_layout_follows_the_post_processor(minilm: Tokenizer, bpe: Tokenizer) -> None:
    bert = Layout.from_backend(minilm.backend)
    assert [x.tolist() for x in bert.pair] == [[101], [102], [102]]
    assert [x.tolist() for x in bert.single] == [[101], [102]] and bert.segment_b_type == 1
    roberta = Layout.from_backend(bpe.backend)
    s, cls = bpe.sep_token_id, bpe.cls_token_id
    assert [x.tolist() for x in roberta.pair] == [[cls], [s, s], [s]]
    assert roberta.segment_b_type == 0 and (roberta.pair_specials, roberta.single_specials) == (
        4,
        2,
    )


def test_round_trip_through_sharded_dataset(built: Path, minilm: Tokenizer) -> None:
    train, test = ShardedDataset(built), ShardedDataset(built, split="eval")
    m = train.manifest
    assert m["format_version"] == FORMAT_VERSION and m["token_dtype"] == "uint16"
    assert m["tokenizer_fingerprint"] == minilm.fingerprint() and m["vocab_size"] == 30522
    assert len(train) + len(test) == m["counts"]["instances"] and len(test) > 0
    assert sum(s["split"] == "train" for s in m["shards"]) > 1  # flushed at 20k tokens
    lengths = [ds.rows[:, 1] + ds.rows[:, 2] for ds in (train, test)]
    assert sum(x.sum() for x in lengths) == m["counts"]["tokens"]
    assert lengths[0].tolist() == [len(train[i].tokens) for i in range(len(train))]
    for i in [*range(len(train)), -1]:
        x = train[i]
        assert x.tokens.dtype == np.int64 and len(x.tokens) == x.len_a + x.len_b <= 128
        assert x.tokens[0] == 101 and x.tokens[x.len_a - 1] == 102 and x.tokens[-1] == 102
        assert x.label in (0, 1) and x.len_b > 0 and np.sum(x.tokens == 102) == 2
    types = train[0].token_type_ids()
    assert types.tolist() == [0] * train[0].len_a + [1] * train[0].len_b
    with pytest.raises(IndexError):
        train[len(train)]
    train.check_tokenizer(minilm)


def test_uint32_ids_round_trip(tmp_path: Path) -> None:
    assert token_dtype(65_535) == np.uint16 and token_dtype(65_536) == np.uint32
    one = np.array([1], dtype=np.int32)
    layout = Layout((one, one * 2), (one, one * 2, one * 2), 1)
    entries: list[dict] = []
    writer = ShardWriter(tmp_path, "train", layout, np.dtype(np.uint32), 10, 16, count(), entries)
    big = np.array([70_000, 99_999], dtype=np.int32)
    for label in (0, 1, 0):
        writer.add(Draft([big], [big[::-1]], label, 0, 0))
    writer.close()
    write_manifest(tmp_path, {"format_version": 2, "token_dtype": "uint32", "shards": entries})
    ds = ShardedDataset(tmp_path)
    assert len(ds) == 3 and len(entries) == 2  # a shard flushes once 10 tokens are buffered
    assert ds[2].tokens.tolist() == [1, 70_000, 99_999, 2, 99_999, 70_000, 2]
    assert (ds[2].len_a, ds[2].len_b, ds[1].label) == (4, 3, 1)


def test_word_flags_round_trip_as_word_ids(tmp_path: Path) -> None:
    """Format 2: packed word-start flags go to words-*.bin; specials (here 1 and 2) always
    start a word; an instance's word ids count the starts; a corrupt flags file is refused."""
    one = np.array([1], dtype=np.int32)
    layout = Layout((one, one * 2), (one, one * 2, one * 2), 1)
    entries: list[dict] = []
    writer = ShardWriter(tmp_path, "train", layout, np.dtype(np.uint16), 100, 16, count(),
                         entries, special_ids=[1, 2])  # fmt: skip
    a = pack_flags(np.array([10, 11, 12]), np.array([WORD_START, 0, WORD_START]))
    b = pack_flags(np.array([13, 14]), np.array([0, 0]))  # a piece cut inside a word
    writer.add(Draft([a], [b], 0, 0, 0))
    writer.close()
    write_manifest(tmp_path, {"format_version": 2, "token_dtype": "uint16", "shards": entries})
    x = ShardedDataset(tmp_path)[0]
    assert x.tokens.tolist() == [1, 10, 11, 12, 2, 13, 14, 2]
    assert x.word_ids is not None and x.word_ids.tolist() == [0, 1, 1, 2, 3, 3, 3, 4]
    words = tmp_path / entries[0]["words"]
    words.write_bytes(bytes([1, 1, 1, 1, 1, 1, 1, 1]))
    with pytest.raises(DataError, match=r"shard '.*words-00000.bin' is corrupt"):
        ShardedDataset(tmp_path)
    write_manifest(tmp_path, {"format_version": 3, "token_dtype": "uint16", "shards": entries})
    with pytest.raises(DataError, match="format_version 3; this bertforge reads 2"):
        ShardedDataset(tmp_path)


def test_corrupt_truncated_or_unfinished_builds_are_refused(
    tmp_path: Path, corpus: Path, minilm: Tokenizer
) -> None:
    out = tmp_path / "out"
    build_data(minilm, [corpus], out, BuildConfig(eval_fraction=0.0))
    shard = out / "tokens-00000.bin"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"shard '.*tokens-00000.bin' is corrupt"):
        ShardedDataset(out)
    assert len(ShardedDataset(out, verify=False)) > 0
    shard.write_bytes(bytes(data[:-2]))
    with pytest.raises(DataError, match=r"incomplete build \(tokens-00000.bin is missing or trunc"):
        ShardedDataset(out)
    (out / "manifest.json").write_text('{"format_version": 1', encoding="utf-8")
    with pytest.raises(DataError, match=r"incomplete build .*re-run build-data"):
        ShardedDataset(out)
    (out / "manifest.json").unlink()
    with pytest.raises(DataError, match=r"incomplete build \(no manifest.json\)"):
        ShardedDataset(out)


def test_rerun_cleans_a_crashed_build_and_skips_an_up_to_date_one(
    tmp_path: Path, corpus: Path, minilm: Tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    first = build_data(minilm, [corpus], out)
    (out / "manifest.json").unlink()  # as if the build died before its manifest
    (out / ".tokens-00007.bin.x1y2.tmp").write_bytes(b"half")
    (out / "tokens-00009.bin").write_bytes(b"stale")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        again = build_data(minilm, [corpus], out)
    assert "incomplete build" in caplog.text and not again.up_to_date
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", "notes.txt", "tokenizer", *(f for s in again.manifest["shards"]
                                         for f in (s["tokens"], s["index"]))]
    )  # fmt: skip
    assert again.manifest == first.manifest
    assert build_data(minilm, [corpus], out).up_to_date
    with pytest.raises(DataError, match=r"built with other objective, seed; pass --force"):
        build_data(minilm, [corpus], out, BuildConfig(objective="sop", seed=1))
    forced = build_data(minilm, [corpus], out, BuildConfig(objective="sop"), force=True)
    assert forced.manifest["objective"] == "sop" and not forced.up_to_date


def test_tokenizer_mismatch_is_an_error(built: Path, bpe: Tokenizer) -> None:
    with pytest.raises(DataError, match=r"built with a different tokenizer .*rebuild or pass"):
        ShardedDataset(built).check_tokenizer(bpe)


def test_bpe_tokenizer_shards(tmp_path: Path, corpus: Path, bpe: Tokenizer) -> None:
    build_data(bpe, [corpus], tmp_path, BuildConfig(objective="full-sentences"))
    ds = ShardedDataset(tmp_path)
    s = bpe.sep_token_id
    for x in (ds[i] for i in range(len(ds))):
        assert x.tokens[0] == bpe.cls_token_id and x.tokens[-1] == s and x.len_b == 0
        assert x.label == -1 and len(x.tokens) <= 128
    assert max(len(ds[i].tokens) for i in range(len(ds))) == 128  # packed to the full length


def digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.iterdir()
        if p.is_file()
    }


def test_output_depends_on_seed_not_on_worker_count(
    tmp_path: Path, corpus: Path, minilm: Tokenizer
) -> None:
    """Deterministic: the same inputs, tokenizer and parameters (seed included) give identical
    files, whatever the number of worker processes."""
    cfg = BuildConfig(objective="sop", shard_size_tokens=30_000, eval_fraction=0.1)
    build_data(minilm, [corpus], tmp_path / "w1", cfg, workers=1)
    build_data(minilm, [corpus], tmp_path / "w2", cfg, workers=2)
    assert digests(tmp_path / "w1") == digests(tmp_path / "w2")
    build_data(minilm, [corpus], tmp_path / "seed", dataclasses.replace(cfg, seed=1))
    seeded = digests(tmp_path / "seed")
    assert seeded.keys() == digests(tmp_path / "w1").keys()
    assert seeded["tokens-00000.bin"] != digests(tmp_path / "w1")["tokens-00000.bin"]
