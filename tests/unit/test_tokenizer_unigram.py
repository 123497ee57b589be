"""Unigram (ALBERT) tokenizers: sentencepiece training, spiece.model in and out, errors, CLI."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import sentencepiece as spm
from tokenizers import pre_tokenizers
from transformers import AlbertTokenizer, AutoTokenizer

from bertforge.errors import ConfigError, DataError, TokenizerError
from bertforge.tokenization import Tokenizer, train_tokenizer

KEYS = ("input_ids", "token_type_ids", "attention_mask")
SPECIALS = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
EXTRA_LINES = [
    "Héllo Wörld, naïve café!  Ünïcödé and 你好世界 with emoji 🙂👍🏽",
    "Tabs\tand  double  spaces, ``quoted'' text and a [MASK] token",
    "x" * 120,
]
FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json", "special_tokens_map.json")


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(doc_lines[:5000] + EXTRA_LINES) + "\n\n   \n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def unigram(corpus_file: Path) -> Tokenizer:
    return train_tokenizer([corpus_file], "unigram", 1500)


@pytest.fixture(scope="module")
def sample(doc_lines: list[str]) -> list[str]:
    return doc_lines[5000:5297] + EXTRA_LINES  # an even count, split into pairs below


@pytest.fixture(scope="module")
def saved(unigram: Tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unigram.save_pretrained(tmp_path_factory.mktemp("saved"))


def copy_files(src: Path, dst: Path, names: tuple[str, ...]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(src / name, dst / name)
    return dst


def assert_same(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...] = KEYS) -> None:
    for key in keys:
        assert a[key] == b[key], key


def same_ids(a: Any, b: Any, sample: list[str]) -> None:
    options: dict[str, Any] = {"padding": True, "truncation": True, "max_length": 48}
    extra = {"return_token_type_ids": True} if not isinstance(b, Tokenizer) else {}
    assert_same(a(sample, **options), b(sample, **options, **extra))
    assert_same(a(sample[::2], sample[1::2]), b(sample[::2], sample[1::2], **extra))


# ---------------------------------------------------------------- training
def test_specials_layout_and_pieces(unigram: Tokenizer) -> None:
    assert unigram.kind == "unigram" and unigram.vocab_size == 1500
    assert [unigram.convert_tokens_to_ids(t) for t in SPECIALS] == [0, 1, 2, 3, 4]
    assert (unigram.pad_token_id, unigram.unk_token_id, unigram.mask_token_id) == (0, 1, 4)
    assert unigram.special_ids == {0, 1, 2, 3, 4}
    enc = unigram("the value", "a list")
    assert enc["input_ids"][0] == 2 and enc["input_ids"][-1] == 3
    assert enc["input_ids"].count(3) == 2 and enc["token_type_ids"][-1] == 1
    assert unigram.num_special_tokens_to_add(pair=True) == 3
    # Lowercased and accent-stripped like albert-base-v2; every word starts with a "▁" piece.
    assert unigram.tokenize("The VALUE") == unigram.tokenize("the value")
    assert unigram.tokenize("café") == unigram.tokenize("cafe")
    words = ["the", "value", "of", "an", "unbelievably", "obscure", "reference,", "xyzzy!"]
    for word in words:  # the first piece of a word has the mark, its continuations do not
        first, *rest = unigram.tokenize(word)
        assert first.startswith("▁") and not any(p.startswith("▁") for p in rest)
    pieces = unigram.tokenize(" ".join(words))
    assert sum(p.startswith("▁") for p in pieces) == len(words) < len(pieces)
    vocab = unigram.get_vocab()
    assert any(p.startswith("▁") for p in vocab) and any(not p.startswith("▁") for p in vocab)
    assert unigram.decode(unigram.encode("Hello,  World!")) == "hello, world!"


def test_training_is_deterministic_and_reads_directories(corpus_file: Path, tmp_path: Path) -> None:
    lines = corpus_file.read_text(encoding="utf-8").splitlines()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("\n".join(lines[:2000]) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines[2000:]) + "\n")
    files = [tmp_path / "b.txt.gz", tmp_path / "sub" / "a.txt"]  # sorted path order
    runs = [train_tokenizer([tmp_path], "unigram", 1000) for _ in range(2)]
    runs.append(train_tokenizer(files, "unigram", 1000))
    assert len({tok.fingerprint() for tok in runs}) == 1
    for i, tok in enumerate(runs):
        tok.save_pretrained(tmp_path / f"run{i}")
    models = {(tmp_path / f"run{i}" / "spiece.model").read_bytes() for i in range(3)}
    assert len(models) == 1  # byte-identical spiece.model


def test_cased_and_extra_specials(corpus_file: Path, tmp_path: Path) -> None:
    tok = train_tokenizer([corpus_file], "unigram", 1000, lowercase=False, special_tokens=["[X]"])
    assert tok.tokenize("Hello") != tok.tokenize("hello")
    assert tok.convert_tokens_to_ids("[X]") == 5 and 5 in tok.special_ids
    assert tok.tokenize("a [X] b") == ["▁a", "[X]", "▁b"]
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is False and config["extra_special_tokens"] == ["[X]"]
    sample = ["Hello [X] World", "Ça va? [X]", "naïve"]
    for source in (tmp_path, copy_files(tmp_path, tmp_path / "sp", FILES[1:])):
        hf = AutoTokenizer.from_pretrained(source)
        assert_same(tok(sample), hf(sample, return_token_type_ids=True))


def test_soft_vocab_limit_reports_trained_size(corpus_file: Path, caplog: Any) -> None:
    with caplog.at_level(logging.INFO, logger="bertforge.tokenization.train"):
        tok = train_tokenizer([corpus_file], "unigram", 50_000)
    assert tok.vocab_size < 50_000
    assert f"vocabulary has {tok.vocab_size} ids" in caplog.text


# ---------------------------------------------------------------- saving and loading
def test_saved_files_and_round_trip(
    unigram: Tokenizer, saved: Path, sample: list[str], tmp_path: Path
) -> None:
    assert sorted(p.name for p in saved.iterdir()) == sorted(FILES)
    config = json.loads((saved / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "AlbertTokenizer"
    assert (config["do_lower_case"], config["keep_accents"]) == (True, False)
    assert config["pad_token"] == "<pad>" and config["mask_token"] == "[MASK]"
    again = Tokenizer.from_pretrained(saved)
    assert again.kind == "unigram" and again.fingerprint() == unigram.fingerprint()
    same_ids(again, unigram, sample)
    # Saving what was loaded writes the very spiece.model sentencepiece trained.
    again.save_pretrained(tmp_path)
    assert (tmp_path / "spiece.model").read_bytes() == (saved / "spiece.model").read_bytes()
    sp = spm.SentencePieceProcessor(model_file=str(saved / "spiece.model"))
    assert (sp.get_piece_size(), sp.pad_id(), sp.unk_id(), sp.bos_id()) == (1500, 0, 1, -1)


@pytest.mark.parametrize("names", [FILES[1:], FILES[1:2]], ids=["with-config", "bare"])
def test_spiece_only_directory_matches(
    unigram: Tokenizer, saved: Path, tmp_path: Path, sample: list[str], names: tuple[str, ...]
) -> None:
    tok = Tokenizer.from_pretrained(copy_files(saved, tmp_path, names))
    assert tok.kind == "unigram" and tok.special_ids == {0, 1, 2, 3, 4}
    assert tok.fingerprint() == unigram.fingerprint()
    same_ids(tok, unigram, sample)


def test_spiece_only_follows_config_casing(saved: Path, tmp_path: Path) -> None:
    copy_files(saved, tmp_path, ("spiece.model",))
    config = {"tokenizer_class": "AlbertTokenizer", "do_lower_case": False, "keep_accents": True}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tok = Tokenizer.from_pretrained(tmp_path)
    hf = AlbertTokenizer.from_pretrained(tmp_path)
    text = "Héllo Wörld, CAFÉ naïve"
    default = Tokenizer.from_pretrained(saved)  # lowercased, accents stripped
    assert tok.tokenize(text) == hf.tokenize(text) != default.tokenize(text)


def test_spiece_model_is_rebuilt_without_one(
    unigram: Tokenizer, saved: Path, tmp_path: Path, sample: list[str]
) -> None:
    """tokenizer.json alone: saving builds a spiece.model that AlbertTokenizer reads the same."""
    loaded = Tokenizer.from_pretrained(copy_files(saved, tmp_path / "json", ("tokenizer.json",)))
    assert loaded.fingerprint() == unigram.fingerprint()
    loaded.save_pretrained(tmp_path / "out")
    rebuilt = (tmp_path / "out" / "spiece.model").read_bytes()
    assert rebuilt != (saved / "spiece.model").read_bytes()  # built, not copied
    sp = spm.SentencePieceProcessor(model_proto=rebuilt)
    assert (sp.get_piece_size(), sp.pad_id(), sp.unk_id()) == (1500, 0, 1)
    assert [sp.id_to_piece(i) for i in range(5)] == SPECIALS
    assert all(sp.is_control(i) for i in (0, 2, 3, 4)) and sp.is_unknown(1)
    only = copy_files(tmp_path / "out", tmp_path / "sp", FILES[1:])
    assert Tokenizer.from_pretrained(only).fingerprint() == unigram.fingerprint()
    same_ids(unigram, AlbertTokenizer.from_pretrained(only), sample)


def test_stale_spiece_model_is_rebuilt(
    unigram: Tokenizer, saved: Path, corpus_file: Path, tmp_path: Path, caplog: Any
) -> None:
    other = train_tokenizer([corpus_file], "unigram", 800).save_pretrained(tmp_path / "other")
    mixed = copy_files(saved, tmp_path / "mixed", ("tokenizer.json", "tokenizer_config.json"))
    shutil.copy(other / "spiece.model", mixed / "spiece.model")
    with caplog.at_level(logging.WARNING):
        Tokenizer.from_pretrained(mixed).save_pretrained(tmp_path / "out")
    assert "no longer matches" in caplog.text
    rebuilt = Tokenizer.from_pretrained(copy_files(tmp_path / "out", tmp_path / "sp", FILES[1:]))
    assert rebuilt.fingerprint() == unigram.fingerprint()


def test_non_albert_pipeline_saves_generic_class(
    unigram: Tokenizer, tmp_path: Path, sample: list[str]
) -> None:
    backend = Tokenizer.from_tokenizers(unigram.backend).backend
    backend.pre_tokenizer = pre_tokenizers.Metaspace()  # T5-style: no whitespace split
    tok = Tokenizer.from_tokenizers(backend)
    assert tok.kind == "unigram"
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert Tokenizer.from_pretrained(tmp_path).fingerprint() == tok.fingerprint()
    same_ids(tok, AutoTokenizer.from_pretrained(tmp_path), sample)
    spm.SentencePieceProcessor(model_file=str(tmp_path / "spiece.model"))


# ---------------------------------------------------------------- errors
def test_albert_config_without_model_files(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "AlbertTokenizer"}')
    with pytest.raises(TokenizerError, match=r"neither tokenizer\.json nor spiece\.model") as info:
        Tokenizer.from_pretrained(tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"not a sentencepiece model \x00\xff", "is not a valid SentencePiece model"),
        ("truncated", "is not a valid SentencePiece model"),
    ],
    ids=["empty", "garbage", "truncated"],
)
def test_corrupt_spiece_model(saved: Path, tmp_path: Path, content: Any, message: str) -> None:
    if content == "truncated":
        content = (saved / "spiece.model").read_bytes()[:5000]
    (tmp_path / "spiece.model").write_bytes(content)
    with pytest.raises(TokenizerError, match=message) as info:
        Tokenizer.from_pretrained(tmp_path)
    assert "spiece.model" in str(info.value) and "\n" not in str(info.value)


def test_sentencepiece_bpe_model_is_refused(corpus_file: Path, tmp_path: Path) -> None:
    lines = corpus_file.read_text(encoding="utf-8").splitlines()[:500]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(tmp_path / "spiece"),
        model_type="bpe",
        vocab_size=300,
        minloglevel=2,
    )
    with pytest.raises(TokenizerError, match="SentencePiece bpe model"):
        Tokenizer.from_pretrained(tmp_path)


def test_corrupt_spiece_beside_tokenizer_json_is_ignored(
    unigram: Tokenizer, saved: Path, tmp_path: Path, caplog: Any
) -> None:
    copy_files(saved, tmp_path, ("tokenizer.json",))
    (tmp_path / "spiece.model").write_bytes(b"\x00garbage")
    with caplog.at_level(logging.WARNING):
        tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.fingerprint() == unigram.fingerprint() and "ignoring" in caplog.text


def test_training_errors(corpus_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n\t\n")
    with pytest.raises(DataError, match="empty corpus"):
        train_tokenizer([empty], "unigram", 500)
    with pytest.raises(ConfigError, match="too small for unigram; use at least 6"):
        train_tokenizer([corpus_file], "unigram", 5)
    with pytest.raises(ConfigError, match=r"vocab_size 40 is too small .* use at least \d+"):
        train_tokenizer([corpus_file], "unigram", 40)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"first line\n" * 50 + b"na" + "ïve".encode("latin-1") + b"\n")
    with pytest.raises(DataError, match=r"latin1\.txt' is not valid UTF-8: byte 0xef"):
        train_tokenizer([bad], "unigram", 100)
