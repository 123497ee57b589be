"""Sequence-length warmup: shards cut into short sequences, and a loader in phases."""

from __future__ import annotations

from itertools import count, islice
from pathlib import Path

import numpy as np
import pytest
from test_loader import assert_same_steps, collator, dataset

from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.instances import Draft
from bertforge.data.loader import PhasedLoader, PretrainingLoader
from bertforge.data.shards import WORD_START, Layout, ShardedDataset, ShardWriter, pack_flags
from bertforge.data.shards import write_manifest as write_manifest_file
from bertforge.data.short import ShortSequences
from bertforge.errors import CheckpointError, ConfigError
from bertforge.pretraining.recipe_tables import TrainConfig
from bertforge.tokenization import Tokenizer


@pytest.fixture(scope="module")
def tok(minilm_path: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_path)


def build(root: Path, tok: Tokenizer, doc_lines: list[str], objective: str) -> ShardedDataset:
    corpus = root / "docs.txt"
    blocks = ["\n".join(doc_lines[i : i + 12]) for i in range(0, 600, 12)]
    corpus.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    cfg = BuildConfig(objective=objective, max_seq_len=64, eval_fraction=0.0)
    build_data(tok, [corpus], root / objective, cfg, workers=0)
    return ShardedDataset(root / objective)


def test_pieces_tile_each_instance_body(
    tmp_path: Path, tok: Tokenizer, doc_lines: list[str]
) -> None:
    data = build(tmp_path, tok, doc_lines, "full-sentences")
    short = ShortSequences(data, 16)
    assert len(short) == int(short.pieces.sum()) > 3 * len(data)
    j = 0
    for i in range(len(data)):
        body = data[i].tokens[1:-1]
        pieces = [short[j + k] for k in range(int(short.pieces[i]))]
        j += len(pieces)
        for p in pieces:
            assert p.tokens.size <= 16 and p.len_a == p.tokens.size and p.len_b == 0
            assert p.tokens[0] == tok.cls_token_id and p.tokens[-1] == tok.sep_token_id
            assert p.label == -1 and p.word_ids is None
        # The fewest pieces that fit, in order, near-equal: no short leftover at the end.
        assert np.array_equal(np.concatenate([p.tokens[1:-1] for p in pieces]), body)
        sizes = [p.tokens.size - 2 for p in pieces]
        assert max(sizes) - min(sizes) <= 1 and len(pieces) == -(-body.size // 14)
    assert j == len(short)
    with pytest.raises(IndexError, match="out of range"):
        short[len(short)]


def test_word_ids_follow_their_tokens(tmp_path: Path) -> None:
    one = np.array([1], dtype=np.int32)
    layout = Layout((one, one * 2), (one, one * 2, one * 2), 1)
    entries: list[dict] = []
    writer = ShardWriter(tmp_path, "train", layout, np.dtype(np.uint16), 100, 16, count(),
                         entries, special_ids=[1, 2])  # fmt: skip
    flags = np.array([WORD_START, 0, WORD_START, 0, 0, WORD_START])
    writer.add(Draft([pack_flags(np.arange(10, 16), flags)], [], -1, 0, 0))
    writer.close()
    write_manifest_file(tmp_path, {"format_version": 2, "token_dtype": "uint16",
                                   "shards": entries, "objective": "full-sentences",
                                   "max_seq_len": 16, "layout": layout.to_json()})  # fmt: skip
    data = ShardedDataset(tmp_path)
    assert data[0].word_ids.tolist() == [0, 1, 1, 2, 2, 2, 3, 4]
    short = ShortSequences(data, 5)  # 3 text tokens per piece: 2 pieces of 3
    a, b = short[0], short[1]
    assert a.tokens.tolist() == [1, 10, 11, 12, 2] and b.tokens.tolist() == [1, 13, 14, 15, 2]
    # The word cut at the edge (12 | 13 14) stays one unit on each side.
    assert a.word_ids.tolist() == [0, 1, 1, 2, 4] and b.word_ids.tolist() == [0, 2, 2, 3, 4]


def test_pairs_and_lengths_are_refused(
    tmp_path: Path, tok: Tokenizer, doc_lines: list[str]
) -> None:
    with pytest.raises(ConfigError, match="'nsp' sentence pairs; build the data with"):
        ShortSequences(build(tmp_path, tok, doc_lines, "nsp"), 16)
    data = build(tmp_path, tok, doc_lines, "full-sentences")
    for length in (2, 64):
        with pytest.raises(ConfigError, match=f"short_seq_len={length}: it must leave room"):
            ShortSequences(data, length)


def test_recipe_needs_a_length_and_a_fraction() -> None:
    assert TrainConfig(max_steps=100, short_seq_len=32, short_seq_fraction=0.3).short_steps == 30
    assert TrainConfig(max_steps=100).short_steps == 0
    for bad in ({"short_seq_len": 32}, {"short_seq_fraction": 0.3},
                {"short_seq_len": 32, "short_seq_fraction": 1.0}):  # fmt: skip
        with pytest.raises(ConfigError, match="needs both"):
            TrainConfig(**bad)


def phased() -> PhasedLoader:
    """Three steps of 16-example batches, then 8-example batches: two samplers, one loader."""
    first = PretrainingLoader(dataset(), collator(), global_batch_size=16, seed=3)
    then = PretrainingLoader(dataset(), collator(), global_batch_size=8, seed=5)
    return PhasedLoader([first, then], [3])


def test_phases_switch_and_resume_in_either() -> None:
    reference = list(islice(phased(), 9))
    assert [step[0]["input_ids"].shape[0] for step in reference] == [16] * 3 + [8] * 6
    alone = PretrainingLoader(dataset(), collator(), global_batch_size=8, seed=5)
    assert_same_steps(reference[3:], list(islice(alone, 6)))  # the second phase from its start
    for stop in (2, 3, 5):
        first = phased()
        list(islice(iter(first), stop))
        resumed = phased()
        resumed.load_state_dict(first.state_dict())
        assert resumed.phase == (stop >= 3)
        assert_same_steps(reference[stop:], list(islice(iter(resumed), 9 - stop)))


def test_resume_with_other_phases_is_refused() -> None:
    plain = PretrainingLoader(dataset(), collator(), global_batch_size=8, seed=5)
    with pytest.raises(CheckpointError, match="had 1 phase"):
        phased().load_state_dict(plain.state_dict())
    with pytest.raises(CheckpointError, match="short-sequence phase and this run has none"):
        plain.load_state_dict(phased().state_dict())
