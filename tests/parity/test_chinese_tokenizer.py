"""Chinese WordPiece: trained with BERT's Chinese rule (every CJK character its own token,
`##` never continuing one, English and digits as word pieces), and a bare Chinese vocab.txt
tokenizing exactly as transformers' BertTokenizerFast (and its Python BertTokenizer) on the
shared Chinese text: Wikipedia (Simplified and Traditional mixed), CMRC 2018 passages and
questions (full-width punctuation, English and numbers inside) and hotel reviews."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import transformers
from test_tokenizer_parity import chunks
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

from bertforge.tokenization import Tokenizer, train_tokenizer
from bertforge.tokenization.train import _is_cjk


@pytest.fixture(scope="module")
def zh_lines(shared_data: Path) -> list[str]:
    zh = shared_data / "corpus" / "zh"
    wiki = zh / "zhwiki_AA_wiki_00.txt"
    cmrc = shared_data / "squad-format" / "cmrc2018" / "cmrc2018_trial.json"
    if not wiki.is_file() or not cmrc.is_file():
        pytest.skip("the shared Chinese text is not there")
    lines = [x for x in wiki.read_text(encoding="utf-8").splitlines() if x.strip()]
    for article in json.loads(cmrc.read_text(encoding="utf-8"))["data"]:
        for p in article["paragraphs"]:
            lines += [p["context"], *(q["question"] for q in p["qas"])]
    reviews = (zh / "ChnSentiCorp_htl_all.csv").read_text(encoding="utf-8-sig").splitlines()
    return lines + reviews[1::10]


@pytest.fixture(scope="module")
def corpus(zh_lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zh") / "train.txt"
    path.write_text("\n".join(zh_lines[::2]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chinese(corpus: Path) -> Tokenizer:
    return train_tokenizer([corpus], "wordpiece", 8000)


def test_every_frequent_character_is_a_token_and_never_continues_one(
    chinese: Tokenizer, corpus: Path
) -> None:
    vocab = chinese.get_vocab()
    counts = Counter(unicodedata.normalize("NFD", corpus.read_text(encoding="utf-8").lower()))
    frequent = [ch for ch, n in counts.items() if n >= 2 and _is_cjk(ch)]
    assert len(frequent) > 3000  # far beyond a 1000-character alphabet
    assert all(ch in vocab for ch in frequent)
    assert not [t for t in vocab if t.startswith("##") and any(map(_is_cjk, t[2:]))]
    tokens = chinese.tokenize("他用Python语言写了2048个程序，非常厉害！")
    assert tokens[:2] == ["他", "用"] and "python" in "".join(tokens[2:4]).replace("##", "")
    cjk = [t for t in tokens if any(map(_is_cjk, t))]
    assert all(len(t) == 1 for t in cjk)  # one character per token


def test_the_default_alphabet_keeps_what_a_1000_character_one_loses(
    chinese: Tokenizer, corpus: Path, zh_lines: list[str]
) -> None:
    capped = train_tokenizer([corpus], "wordpiece", 8000, limit_alphabet=1000)
    held_out = zh_lines[1::2][:2000]

    def unknown(tok: Tokenizer) -> int:
        unk = tok.unk_token_id
        return sum(ids.count(unk) for ids in tok(held_out)["input_ids"])

    assert unknown(chinese) * 5 < unknown(capped), (unknown(chinese), unknown(capped))


@pytest.mark.parametrize("fast", [True, False])
def test_a_chinese_vocab_txt_tokenizes_like_transformers(
    chinese: Tokenizer, zh_lines: list[str], tmp_path: Path, fast: bool
) -> None:
    vocab = tmp_path / "vocab.txt"
    ordered = sorted(chinese.get_vocab().items(), key=lambda kv: kv[1])
    vocab.write_text("".join(f"{t}\n" for t, _ in ordered), encoding="utf-8")
    ours = Tokenizer.from_pretrained(tmp_path)  # a directory holding only vocab.txt
    # transformers 5: BertTokenizerFast is the tokenizers-backed class, the Python one legacy.
    cls = transformers.BertTokenizerFast if fast else BertTokenizerLegacy
    theirs = cls.from_pretrained(tmp_path)
    lines = zh_lines if fast else zh_lines[::3]  # the Python tokenizer is slow
    assert len(lines) >= (1000 if fast else 300)
    options = {"truncation": True, "max_length": 128, "return_token_type_ids": True}
    for texts in chunks(lines):
        a, b = ours(texts, **options), theirs(texts, **options)
        assert a["input_ids"] == b["input_ids"]
        assert a["token_type_ids"] == b["token_type_ids"]
    if not fast:
        return  # the Python tokenizer truncates long pairs its own way (the fast one is ours)
    for texts in chunks(lines[:600]):
        a = ours(texts, return_offsets_mapping=True, **options)
        b = theirs(texts, return_offsets_mapping=True, **options)
        assert a["offset_mapping"] == b["offset_mapping"]
    pairs = ours(lines[:64], lines[64:128], **options), theirs(lines[:64], lines[64:128], **options)
    assert pairs[0]["input_ids"] == pairs[1]["input_ids"]
    assert pairs[0]["token_type_ids"] == pairs[1]["token_type_ids"]
