"""train_tokenizer: WordPiece and byte-level BPE, saved, reloaded by bertforge and transformers."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from bertforge.errors import ConfigError, DataError
from bertforge.tokenization import Tokenizer, train_tokenizer

KEYS = ("input_ids", "token_type_ids", "attention_mask")
EXTRA_LINES = [
    "Héllo Wörld, naïve café!  Ünïcödé and 你好世界 with emoji 🙂👍🏽",
    "Tabs\tand  double  spaces, a <mask> token and a [MASK] token",
    "x" * 120,
]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    text = "\n".join(doc_lines[:5000] + EXTRA_LINES)
    path.write_text(text[:300_000] + "\n\n   \n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sample(doc_lines: list[str]) -> list[str]:
    return doc_lines[5000:5297] + EXTRA_LINES  # an even count, split into pairs below


@pytest.fixture(scope="module")
def wordpiece(corpus_file: Path) -> Tokenizer:
    return train_tokenizer([corpus_file], "wordpiece", 2000)


@pytest.fixture(scope="module")
def bpe(corpus_file: Path) -> Tokenizer:
    return train_tokenizer([corpus_file], "bpe", 1000)


def assert_same(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...] = KEYS) -> None:
    for key in keys:
        assert a[key] == b[key], key


def check_roundtrip(tok: Tokenizer, directory: Path, sample: list[str], hf_class: str) -> None:
    """Saved files reload to the same ids in bertforge and in transformers' AutoTokenizer."""
    tok.save_pretrained(directory)
    again = Tokenizer.from_pretrained(directory)
    assert again.fingerprint() == tok.fingerprint()
    hf = AutoTokenizer.from_pretrained(directory)
    assert type(hf).__name__ == hf_class
    pairs_a, pairs_b = sample[::2], sample[1::2]
    options: dict[str, Any] = {"padding": True, "truncation": True, "max_length": 48}
    assert_same(again(sample, **options), tok(sample, **options))
    # RobertaTokenizer drops token_type_ids (all zero for BPE): compare what it returns.
    keys = tuple(k for k in KEYS if k in hf(sample[0]))
    assert_same(tok(sample, **options), hf(sample, **options), keys)
    assert_same(tok(pairs_a, pairs_b, **options), hf(pairs_a, pairs_b, **options), keys)
    assert_same(tok(pairs_a, pairs_b), hf(pairs_a, pairs_b), keys)
    ids = tok(sample)["input_ids"]
    assert tok.batch_decode(ids) == hf.batch_decode(ids, skip_special_tokens=True)


def test_wordpiece_specials_and_layout(wordpiece: Tokenizer) -> None:
    assert wordpiece.kind == "wordpiece"
    assert 1500 < wordpiece.vocab_size <= 2000
    ids = [wordpiece.convert_tokens_to_ids(t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]]
    assert ids == [0, 1, 2, 3] and wordpiece.mask_token_id == 4
    assert wordpiece.special_ids == {0, 1, 2, 3, 4}
    enc = wordpiece("the value", "a list")
    assert enc["input_ids"][0] == 2 and enc["input_ids"][-1] == 3
    assert enc["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert wordpiece.tokenize("The VALUE") == ["the", "value"]  # lowercased by default
    assert any(t.startswith("##") for t in wordpiece.get_vocab())


def test_bpe_specials_and_layout(bpe: Tokenizer) -> None:
    assert bpe.kind == "bpe" and bpe.vocab_size == 1000
    names = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    assert [bpe.convert_tokens_to_ids(t) for t in names] == [0, 1, 2, 3, 4]
    assert (bpe.cls_token_id, bpe.pad_token_id, bpe.sep_token_id) == (0, 1, 2)
    assert (bpe.unk_token_id, bpe.mask_token_id) == (3, 4)
    enc = bpe("the value", "a list")
    ids = enc["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3  # <s> A </s></s> B </s>
    assert set(enc["token_type_ids"]) == {0}
    plain = bpe.encode("The value", add_special_tokens=False)
    assert bpe.encode("The value <mask>", add_special_tokens=False) == [*plain, 4]  # lstrip
    assert bpe.decode(bpe.encode("Hello  World 🙂")) == "Hello  World 🙂"  # cased, lossless


def test_wordpiece_roundtrip(wordpiece: Tokenizer, tmp_path: Path, sample: list[str]) -> None:
    check_roundtrip(wordpiece, tmp_path, sample, "BertTokenizer")
    assert (tmp_path / "vocab.txt").is_file()


def test_bpe_roundtrip(bpe: Tokenizer, tmp_path: Path, sample: list[str]) -> None:
    check_roundtrip(bpe, tmp_path, sample, "RobertaTokenizer")
    (tmp_path / "tokenizer.json").unlink()  # the vocab.json + merges.txt path alone
    bare = Tokenizer.from_pretrained(tmp_path)
    assert bare.special_ids == bpe.special_ids
    assert_same(bare(sample, sample[::-1]), bpe(sample, sample[::-1]))


def test_lowercased_bpe_uses_the_generic_transformers_class(
    corpus_file: Path, tmp_path: Path, sample: list[str]
) -> None:
    tok = train_tokenizer([corpus_file], "bpe", 600, lowercase=True)
    assert tok.tokenize("ABC") == tok.tokenize("abc")
    check_roundtrip(tok, tmp_path, sample, "TokenizersBackend")


def test_training_is_deterministic_and_reads_directories(corpus_file: Path, tmp_path: Path) -> None:
    lines = corpus_file.read_text(encoding="utf-8").splitlines()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("\n".join(lines[:2000]) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines[2000:]) + "\n")
    (tmp_path / "ignored.json").write_text("{}")
    files = [tmp_path / "b.txt.gz", tmp_path / "sub" / "a.txt"]  # sorted path order
    # Vocab 3000 has many merge-count ties: unstable ids would show up here.
    fingerprints = {train_tokenizer([tmp_path], "wordpiece", 3000).fingerprint() for _ in range(3)}
    fingerprints.add(train_tokenizer(files, "wordpiece", 3000).fingerprint())
    assert len(fingerprints) == 1


def test_extra_special_tokens(corpus_file: Path) -> None:
    tok = train_tokenizer([corpus_file], "wordpiece", 500, special_tokens=["[EXTRA]"])
    assert tok.convert_tokens_to_ids("[EXTRA]") == 5 and 5 in tok.special_ids
    assert tok.tokenize("a [EXTRA] b") == ["a", "[EXTRA]", "b"]


# ---------------------------------------------------------------- errors
def test_missing_file_is_named(tmp_path: Path, corpus_file: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.txt' does not exist"):
        train_tokenizer([corpus_file, tmp_path / "missing.txt"], "wordpiece", 500)


def test_non_utf8_reports_byte_offset(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"first line\nna" + "ïve".encode("latin-1") + b"\n")
    with pytest.raises(
        DataError,
        match=r"latin1\.txt' is not valid UTF-8: byte 0x[0-9a-f]{2} at offset 13; .*iconv",
    ):
        train_tokenizer([bad], "wordpiece", 500)


def test_non_utf8_inside_gzip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"ok\n\xff\n"))
    with pytest.raises(DataError, match="at decompressed offset 3"):
        train_tokenizer([bad], "bpe", 300)


@pytest.mark.parametrize("content", ["", "\n  \n\t\n"])
def test_empty_corpus(tmp_path: Path, content: str) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text(content)
    with pytest.raises(DataError, match="empty corpus"):
        train_tokenizer([empty], "wordpiece", 500)


def test_bad_arguments(corpus_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'wordlevel' is unknown; use one of .*unigram"):
        train_tokenizer([corpus_file], "wordlevel", 500)
    with pytest.raises(ConfigError, match="at least 261"):
        train_tokenizer([corpus_file], "bpe", 100)
    with pytest.raises(DataError, match=r"no \*\.txt or \*\.gz files"):
        train_tokenizer([tmp_path], "wordpiece", 500)
    shutil.copy(corpus_file, tmp_path / "x.txt")
    with pytest.raises(DataError, match="no input files"):
        train_tokenizer([], "wordpiece", 500)
