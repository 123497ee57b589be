"""Tokenizer loading errors, call semantics and BatchEncoding behaviour (MiniLM vocab)."""

from __future__ import annotations

import json
import pickle
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer as BackendTokenizer

from bertforge.errors import TokenizerError
from bertforge.tokenization import BatchEncoding, Tokenizer

TEXTS = ["Hello world!", "A somewhat longer sentence, with punctuation and naïve accents."]


@pytest.fixture(scope="module")
def tok(minilm_path: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_path)


# ---------------------------------------------------------------- loading errors
def test_missing_directory_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(TokenizerError, match=r"nope.*does not exist"):
        Tokenizer.from_pretrained(missing)


def test_file_instead_of_directory(minilm_path: Path) -> None:
    with pytest.raises(TokenizerError, match="is a file"):
        Tokenizer.from_pretrained(minilm_path / "tokenizer.json")


def test_directory_without_tokenizer_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TokenizerError, match=r"holds no tokenizer.*found: config\.json"):
        Tokenizer.from_pretrained(tmp_path)


def test_corrupt_tokenizer_json_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(TokenizerError, match=r"tokenizer\.json is not valid JSON"):
        Tokenizer.from_pretrained(tmp_path)


def test_corrupt_tokenizer_json_rejected_by_library(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Nope"}}')
    with pytest.raises(TokenizerError, match=r"tokenizer\.json was rejected"):
        Tokenizer.from_pretrained(tmp_path)


def test_empty_vocab_txt(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("")
    with pytest.raises(TokenizerError, match=r"vocab\.txt is empty"):
        Tokenizer.from_pretrained(tmp_path)


def test_vocab_txt_without_unk(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\nhello\n")
    with pytest.raises(TokenizerError, match="no unknown token"):
        Tokenizer.from_pretrained(tmp_path)


def test_corrupt_tokenizer_config(tmp_path: Path, minilm_path: Path) -> None:
    shutil.copy(minilm_path / "vocab.txt", tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(TokenizerError, match=r"tokenizer_config\.json is not valid JSON"):
        Tokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("text", "pair", "message"),
    [
        (123, None, "text must be a str or a list of str, not int"),
        (b"bytes", None, "not bytes; decode bytes first"),
        (["ok", None], None, r"text\[1\] is a NoneType"),
        ("a", ["b"], "text_pair must be a str too"),
        (["a", "b"], "c", "text_pair must be a list"),
        (["a", "b"], ["c"], "text has 2 items but text_pair has 1"),
    ],
)
def test_non_string_input_is_a_tokenizer_error(
    tok: Tokenizer, text: Any, pair: Any, message: str
) -> None:
    with pytest.raises(TokenizerError, match=message):
        tok(text, pair)


def test_bad_option_values(tok: Tokenizer) -> None:
    with pytest.raises(TokenizerError, match="padding='left'"):
        tok(TEXTS, padding="left")
    with pytest.raises(TokenizerError, match="truncation='all'"):
        tok(TEXTS, truncation="all")
    with pytest.raises(TokenizerError, match="return_tensors='tf'"):
        tok(TEXTS, return_tensors="tf")
    with pytest.raises(TokenizerError, match="Second sequence not provided"):
        tok(TEXTS, truncation="only_second", max_length=4)


# ---------------------------------------------------------------- call semantics
def test_single_string_is_unbatched(tok: Tokenizer) -> None:
    enc = tok("hello world")
    assert enc["input_ids"] == [101, 7592, 2088, 102]
    assert enc["token_type_ids"] == [0, 0, 0, 0]
    assert enc["attention_mask"] == [1, 1, 1, 1]
    assert tok("hello world", return_tensors="pt")["input_ids"].shape == (1, 4)


def test_pair_layout(tok: Tokenizer) -> None:
    enc = tok("hello", "world")
    assert enc["input_ids"] == [101, 7592, 102, 2088, 102]
    assert enc["token_type_ids"] == [0, 0, 0, 1, 1]
    assert enc.sequence_ids() == [None, 0, None, 1, None]


@pytest.mark.parametrize(("kind", "module"), [("pt", torch), ("np", np)])
def test_return_tensors_shapes_and_dtypes(tok: Tokenizer, kind: str, module: Any) -> None:
    batch = tok(TEXTS, padding=True, return_tensors=kind, return_offsets_mapping=True)
    length = max(len(tok.encode(t)) for t in TEXTS)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert batch[key].shape == (2, length)
        assert batch[key].dtype == module.int64
    assert batch["offset_mapping"].shape == (2, length, 2)


def test_tensors_need_equal_lengths(tok: Tokenizer) -> None:
    with pytest.raises(TokenizerError, match="padding=True"):
        tok(TEXTS, return_tensors="pt")


def test_padding_to_multiple(tok: Tokenizer) -> None:
    batch = tok(TEXTS, padding=True, pad_to_multiple_of=8)
    assert {len(row) for row in batch["input_ids"]} == {16}
    assert batch["attention_mask"][0].count(1) == 5
    with pytest.raises(TokenizerError, match="not a multiple of pad_to_multiple_of"):
        tok(TEXTS, padding="max_length", truncation=True, max_length=30, pad_to_multiple_of=8)


def test_max_length_defaults_to_model_max_length(tok: Tokenizer) -> None:
    assert len(tok("hello", padding="max_length")["input_ids"]) == 512
    assert len(tok("word " * 1000, truncation=True)["input_ids"]) == 512
    assert len(tok("word " * 1000, max_length=20)["input_ids"]) == 20  # bare max_length truncates
    assert len(tok("word " * 1000)["input_ids"]) == 1002


def test_optional_keys_only_when_asked(tok: Tokenizer) -> None:
    plain = tok(TEXTS)
    assert list(plain) == ["input_ids", "token_type_ids", "attention_mask"]
    rich = tok(
        TEXTS,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_token_type_ids=False,
        return_attention_mask=False,
    )
    assert list(rich) == ["input_ids", "special_tokens_mask", "offset_mapping"]
    assert rich["special_tokens_mask"][0] == [1, 0, 0, 0, 1]
    assert rich["offset_mapping"][0][1] == (0, 5)


def test_overflowing_tokens(tok: Tokenizer) -> None:
    batch = tok(
        ["one two three four five six seven", "short"],
        max_length=6,
        stride=1,
        truncation=True,
        return_overflowing_tokens=True,
    )
    assert batch["overflow_to_sample_mapping"] == [0, 0, 1]  # 7 words: windows of 4, overlap 1
    assert batch["input_ids"][1][:2] == [101, batch["input_ids"][0][-2]]  # stride overlap


def test_settings_do_not_leak_between_calls(tok: Tokenizer) -> None:
    tok(TEXTS, padding="max_length", truncation=True, max_length=64)
    with pytest.raises(TokenizerError):
        tok(TEXTS, truncation="only_second", max_length=4)
    assert tok.backend.truncation is None and tok.backend.padding is None
    assert [len(r) for r in tok(TEXTS)["input_ids"]] == [len(tok.encode(t)) for t in TEXTS]


def test_concurrent_calls_keep_their_own_settings(tok: Tokenizer) -> None:
    def run(i: int) -> bool:
        length = 16 + (i % 4) * 8
        batch = tok(TEXTS, padding="max_length", truncation=True, max_length=length)
        return all(len(row) == length for row in batch["input_ids"])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(run, range(200)))


# ---------------------------------------------------------------- BatchEncoding
def test_batch_encoding_accessors(tok: Tokenizer) -> None:
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    assert isinstance(batch, BatchEncoding) and isinstance(batch, dict)
    assert len(batch.encodings) == 2
    assert batch.input_ids is batch["input_ids"]
    assert batch.tokens(0)[:4] == ["[CLS]", "hello", "world", "!"]
    assert batch.word_ids(0)[:5] == [None, 0, 1, 2, None]
    assert batch.to("cpu") is batch and batch["input_ids"].device.type == "cpu"
    with pytest.raises(AttributeError):
        _ = batch.no_such_key
    with pytest.raises(TokenizerError, match="batch index 5"):
        batch.word_ids(5)


def test_batch_encoding_pickles(tok: Tokenizer) -> None:
    batch = tok(TEXTS, padding=True)
    clone = pickle.loads(pickle.dumps(batch))
    assert clone == batch and clone.tokens(1) == batch.tokens(1)


def test_tokenizer_pickles(tok: Tokenizer) -> None:
    clone = pickle.loads(pickle.dumps(tok))
    assert clone(TEXTS, padding=True) == tok(TEXTS, padding=True)


# ---------------------------------------------------------------- vocabulary helpers
def test_special_tokens_and_sizes(tok: Tokenizer) -> None:
    assert tok.kind == "wordpiece" and tok.model_max_length == 512
    assert (tok.pad_token, tok.pad_token_id) == ("[PAD]", 0)
    assert (tok.unk_token_id, tok.cls_token_id, tok.sep_token_id) == (100, 101, 102)
    assert (tok.mask_token, tok.mask_token_id) == ("[MASK]", 103)
    assert tok.special_ids == {0, 100, 101, 102, 103}
    assert tok.vocab_size == len(tok) == 30522
    assert tok.num_special_tokens_to_add() == 2 and tok.num_special_tokens_to_add(True) == 3


def test_encode_decode_convert(tok: Tokenizer) -> None:
    ids = tok.encode("Hello, [MASK] world!")
    assert 103 in ids
    assert tok.decode(ids) == "hello, world!"
    assert tok.decode(torch.tensor(ids), skip_special_tokens=False).startswith("[CLS] hello")
    assert tok.batch_decode(np.array([ids, ids])) == ["hello, world!"] * 2
    assert tok.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    assert tok.convert_tokens_to_ids(["hello", "qqqqzzzz"]) == [7592, 100]
    assert tok.convert_tokens_to_ids("[SEP]") == 102
    assert tok.convert_ids_to_tokens([101, 7592]) == ["[CLS]", "hello"]
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        tok.convert_ids_to_tokens(10**6)


# ---------------------------------------------------------------- persistence
def test_fingerprint_is_stable_and_sensitive(tok: Tokenizer, tmp_path: Path) -> None:
    fp = tok.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    tok.save_pretrained(tmp_path / "copy")
    assert Tokenizer.from_pretrained(tmp_path / "copy").fingerprint() == fp
    spec = json.loads(tok.backend.to_str())
    spec["normalizer"]["lowercase"] = False
    cased = Tokenizer.from_tokenizers(BackendTokenizer.from_str(json.dumps(spec)))
    assert cased.fingerprint() != fp


def test_save_pretrained_writes_files_atomically(tok: Tokenizer, tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_text("keep me")
    tok.save_pretrained(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer" and config["do_lower_case"] is True
    assert len((tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()) == 30522


def test_from_tokenizers_copies_and_clears_baked_settings(minilm_path: Path) -> None:
    raw = BackendTokenizer.from_file(str(minilm_path / "tokenizer.json"))
    assert raw.truncation is not None and raw.padding is not None  # baked in: 128
    wrapped = Tokenizer.from_tokenizers(raw)
    assert raw.truncation is not None  # the caller's object is untouched
    assert len(wrapped("hi")["input_ids"]) == 3
    assert wrapped.model_max_length > 10**20  # no tokenizer_config: unlimited, like transformers
    assert len(wrapped("word " * 600, truncation=True)["input_ids"]) == 602


def test_an_untruncated_text_past_the_model_length_warns_once_unless_only_counted(
    minilm_path: Path, caplog: Any
) -> None:
    """A text longer than model_max_length (MiniLM: 512) without truncation warns once per
    tokenizer; the unknown-character count tokenizes whole texts and says nothing."""
    import logging

    from bertforge.tokenization.coverage import unknown_share

    long = "word " * 600
    with caplog.at_level(logging.WARNING, logger="bertforge.tokenization.tokenizer"):
        tok = Tokenizer.from_pretrained(minilm_path)
        assert unknown_share(tok, [long]) == 0.0
        tok(long, verbose=False)
        assert "exceeds model_max_length" not in caplog.text
        tok(long)
        tok(long)
    assert caplog.text.count("a sequence of 602 tokens exceeds model_max_length 512") == 1
