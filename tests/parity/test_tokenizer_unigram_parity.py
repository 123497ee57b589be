"""bertforge's Unigram (ALBERT) tokenizer vs transformers' AlbertTokenizer on the files we save.

A SentencePiece model is trained on pydoc text, saved, and loaded back by transformers both
from tokenizer.json and from spiece.model alone; every comparison runs on 1,000+ lines (pydoc
text + the crafted and random unicode lines of test_tokenizer_parity.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from test_tokenizer_parity import CRAFTED, PAIR_OPTIONS, SINGLE_OPTIONS, chunks, random_lines
from transformers import AlbertTokenizer, AutoTokenizer

from bertforge.tokenization import Tokenizer, train_tokenizer

KEYS = ("input_ids", "token_type_ids", "attention_mask")
# AlbertTokenizer's model_input_names leave token_type_ids out unless asked for.
ASK = {"return_token_type_ids": True}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> Path:
    root = tmp_path_factory.mktemp("unigram")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(doc_lines[:5000]) + "\n", encoding="utf-8")
    train_tokenizer([corpus], "unigram", 2000).save_pretrained(root / "tok")
    return root / "tok"


@pytest.fixture(scope="module")
def ours(saved: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(saved)


@pytest.fixture(scope="module", params=["tokenizer.json", "spiece.model"])
def hf(
    request: pytest.FixtureRequest, saved: Path, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """AlbertTokenizer from the saved directory, or from its spiece.model (+ config) alone."""
    source = saved
    if request.param == "spiece.model":
        source = tmp_path_factory.mktemp("spiece-only")
        for name in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(saved / name, source / name)
    tok = AlbertTokenizer.from_pretrained(source)
    assert len(tok) == 2000
    return tok


@pytest.fixture(scope="module")
def corpus(doc_lines: list[str]) -> dict[str, Any]:
    lines = doc_lines[::6] + CRAFTED + random_lines(300)
    assert len(lines) >= 1000
    return {"lines": lines, "pairs": list(zip(lines[::2], lines[1::2], strict=False))}


def assert_same(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...] = KEYS) -> None:
    for key in keys:
        assert a[key] == b[key], key


@pytest.mark.parametrize("options", SINGLE_OPTIONS, ids=lambda o: ",".join(map(str, o.values())))
def test_single_texts_match(
    ours: Tokenizer, hf: Any, corpus: dict[str, Any], options: dict[str, Any]
) -> None:
    for batch in chunks(corpus["lines"], 256):
        assert_same(ours(batch, **options), hf(batch, **options, **ASK))


@pytest.mark.parametrize("options", PAIR_OPTIONS, ids=lambda o: ",".join(map(str, o.values())))
def test_pairs_match(
    ours: Tokenizer, hf: Any, corpus: dict[str, Any], options: dict[str, Any]
) -> None:
    pairs = corpus["pairs"]
    strategy = options.get("truncation")
    if strategy in ("only_first", "only_second"):
        # Only the other side may be cut: keep pairs where the fixed side leaves room.
        fixed = 1 if strategy == "only_first" else 0
        pairs = [p for p in pairs if len(hf(p[fixed])["input_ids"]) < options["max_length"] - 8]
    assert len(pairs) >= 100
    for batch in chunks(pairs, 256):
        a, b = [p[0] for p in batch], [p[1] for p in batch]
        assert_same(ours(a, b, **options), hf(a, b, **options, **ASK))


def test_offsets_masks_and_tokens_match(ours: Tokenizer, hf: Any, corpus: dict[str, Any]) -> None:
    options = {
        "return_offsets_mapping": True,
        "return_special_tokens_mask": True,
        "padding": True,
        "truncation": True,
    }
    pairs = corpus["pairs"][:200]
    for batch, pair in [*((b, None) for b in chunks(corpus["lines"], 256)), (pairs, pairs)]:
        texts = batch if pair is None else [p[0] for p in batch]
        seconds = None if pair is None else [p[1] for p in batch]
        mine, theirs = ours(texts, seconds, **options), hf(texts, seconds, **options, **ASK)
        assert_same(mine, theirs, (*KEYS, "special_tokens_mask"))
        assert [[tuple(o) for o in row] for row in mine["offset_mapping"]] == [
            [tuple(o) for o in row] for row in theirs["offset_mapping"]
        ]
        for i in range(len(texts)):
            assert mine.tokens(i) == theirs.tokens(i)
            assert mine.word_ids(i) == theirs.word_ids(i)


def test_overflow_windows_and_tensors_match(
    ours: Tokenizer, hf: Any, corpus: dict[str, Any]
) -> None:
    long_lines = sorted(corpus["lines"], key=len)[-40:]
    options = {
        "max_length": 48,
        "stride": 8,
        "truncation": True,
        "padding": True,
        "return_overflowing_tokens": True,
    }
    mine, theirs = ours(long_lines, **options), hf(long_lines, **options, **ASK)
    assert_same(mine, theirs, (*KEYS, "overflow_to_sample_mapping"))
    assert len(mine["input_ids"]) > len(long_lines)
    text, pair = CRAFTED[3], CRAFTED[5]
    mine = ours([text, pair], [pair, text], padding=True, return_tensors="pt")
    theirs = hf([text, pair], [pair, text], padding=True, return_tensors="pt", **ASK)
    for key in KEYS:
        assert torch.equal(mine[key], theirs[key])


def test_decode_and_tokenize_match(ours: Tokenizer, hf: Any, corpus: dict[str, Any]) -> None:
    lines = corpus["lines"]
    ids = hf(lines)["input_ids"]
    for skip in (True, False):
        assert ours.batch_decode(ids, skip_special_tokens=skip) == hf.batch_decode(
            ids, skip_special_tokens=skip
        )
        assert ours.decode(ids[5], skip_special_tokens=skip) == hf.decode(
            ids[5], skip_special_tokens=skip
        )
    for text in lines[::5]:
        assert ours.tokenize(text) == hf.tokenize(text)
    assert ours.convert_ids_to_tokens(ids[1]) == hf.convert_ids_to_tokens(ids[1])
    assert ours.get_vocab() == hf.get_vocab()


def test_auto_tokenizer_picks_albert_from_both_files(
    ours: Tokenizer, saved: Path, tmp_path: Path, corpus: dict[str, Any]
) -> None:
    for name in ("spiece.model", "tokenizer_config.json"):
        shutil.copy(saved / name, tmp_path / name)
    lines = corpus["lines"]
    for source in (saved, tmp_path):
        auto = AutoTokenizer.from_pretrained(source)
        assert type(auto).__name__ == "AlbertTokenizer"
        assert_same(ours(lines, truncation=True), auto(lines, truncation=True, **ASK))
