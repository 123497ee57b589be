"""bertforge.tokenization vs transformers' fast tokenizer on the MiniLM (BERT uncased) vocab.

Every test runs on a self-contained corpus (pydoc text + crafted and random unicode); the
`shared` parametrization adds GLUE / CoNLL / SQuAD / zhwiki lines and skips without them.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from bertforge.tokenization import Tokenizer

CRAFTED = [
    "",
    "   ",
    "\t\n\r",
    "Héllo Wörld! Ça va? naïve café résumé coöperate",
    "Cafe\u0301 vs Café (NFD vs NFC), A\u030angstro\u0308m, ﬁne ligature, Ｆｕｌｌｗｉｄｔｈ",
    "你好，世界！这是一个测试。漢字とひらがなとカタカナ。한국어 문장입니다.",
    "Emoji: 🙂😀👍🏽 👨‍👩‍👧‍👦 🇩🇪 ❤️ ✈︎ 🧑🏿‍🚀",
    "Zero\u200bwidth\u200cjoin\u200d and BOM\ufeffhere, NBSP\u00a0space, ideographic\u3000space",
    "control\x00chars\x01\x07\x1b[0m and \x7f\x85\x9f soft\u00adhyphen",
    "Tabs\tand\r\nwindows newlines\vvertical\ftab",
    "RTL: \u202eevil\u202c שלום עולם مرحبا بالعالم",
    "Ελληνικά Русский язык Ἀθῆναι ΣΊΣΥΦΟΣ",
    "Special [MASK] [CLS] [SEP] [PAD] [UNK] and lowercase [mask] [cls] inside text",
    "x" * 150 + " supercalifragilisticexpialidocious" * 3,
    "numbers 3.14159 1,000,000 -42 1e-9 0xDEADBEEF 2024-01-01T12:00:00Z",
    "https://example.com/path?q=1&r=2#frag user@example.org C:\\Windows\\System32",
    "def f(x): return {'a': [1, 2, 3]} if x else None  # comment",
    "!!!???...---___***###@@@$$$%%%^^^&&&((()))",
    "word " * 700,
    "𠀀𠀁𪚲 CJK ext B, 㐀㐁 ext A, 豈更 compatibility",
    "\U000e0041\U000e0042 tags, \ue000\uf8ff private use, \ufff0\ufffd replacement",
]

# Code point ranges for random lines: scripts, combining marks, CJK blocks, emoji, controls.
RANGES = [
    (0x20, 0x7E),
    (0x00, 0x1F),
    (0x80, 0x24F),
    (0x300, 0x36F),
    (0x370, 0x52F),
    (0x590, 0x6FF),
    (0x900, 0x97F),
    (0xE00, 0xE7F),
    (0x2000, 0x206F),
    (0x3000, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
    (0x1F300, 0x1FAFF),
    (0x20000, 0x2A6DF),
]


def random_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(1, 30)):
            lo, hi = rng.choice(RANGES)
            words.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 12))))
        lines.append(rng.choice([" ", "  ", "\t"]).join(words))
    return lines


def _tsv(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    rows = path.read_text(encoding=encoding).splitlines()[1:]
    return [row.split("\t") for row in rows]


def shared_corpus(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Lines and sentence pairs from the shared datasets (whichever are present)."""
    lines: list[str] = []
    pairs: list[tuple[str, str]] = []
    if (p := root / "glue/SST-2/dev.tsv").is_file():
        lines += [row[0] for row in _tsv(p)]
    if (p := root / "glue/MRPC/dev.tsv").is_file():
        pairs += [(row[3], row[4]) for row in _tsv(p, "utf-8-sig") if len(row) >= 5]
    if (p := root / "conll2003/eng.testa").is_file():
        sentence: list[str] = []
        for row in p.read_text(encoding="utf-8").splitlines():
            if row.strip() and not row.startswith("-DOCSTART-"):
                sentence.append(row.split(" ")[0])
            elif sentence:
                lines.append(" ".join(sentence))
                sentence = []
    if (p := root / "squad/dev-v1.1.json").is_file():
        for article in json.loads(p.read_text(encoding="utf-8"))["data"][:6]:
            for para in article["paragraphs"]:
                lines.append(para["context"])
                pairs += [(qa["question"], para["context"]) for qa in para["qas"][:2]]
    if (p := root / "corpus/zh/zhwiki_AA_wiki_00.txt").is_file():
        with p.open(encoding="utf-8") as fh:
            zh = [line.strip() for _, line in zip(range(3000), fh, strict=False)]
        lines += [line for line in zh if line and not line.startswith("<")][:600]
    return lines, pairs


@pytest.fixture(scope="module")
def hf(minilm_path: Path) -> Any:
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def ours(minilm_path: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module", params=["builtin", "shared"])
def corpus(request: pytest.FixtureRequest, doc_lines: list[str]) -> dict[str, Any]:
    if request.param == "shared":
        lines, pairs = shared_corpus(request.getfixturevalue("shared_data"))
        if len(lines) < 1000:
            pytest.skip("fewer than 1,000 lines found in the shared datasets")
    else:
        lines = doc_lines[::6] + CRAFTED + random_lines(300)
        pairs = list(zip(lines[::2], lines[1::2], strict=False))
    assert len(lines) >= 1000
    return {"lines": lines, "pairs": pairs}


def chunks(items: list[Any], size: int = 64) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


KEYS = ("input_ids", "token_type_ids", "attention_mask")


def assert_same(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...] = KEYS) -> None:
    for key in keys:
        assert a[key] == b[key], key


SINGLE_OPTIONS = [
    {},
    {"truncation": True},  # model_max_length 512
    {"padding": True, "truncation": True, "max_length": 512},
    {"padding": "max_length", "truncation": True, "max_length": 32},
    {"padding": "longest", "pad_to_multiple_of": 8},
    {"max_length": 32},  # a bare max_length turns truncation on
    {"add_special_tokens": False, "truncation": True, "max_length": 16},
]


@pytest.mark.parametrize("options", SINGLE_OPTIONS, ids=lambda o: ",".join(map(str, o.values())))
def test_single_texts_match(
    ours: Tokenizer, hf: Any, corpus: dict[str, Any], options: dict[str, Any]
) -> None:
    for batch in chunks(corpus["lines"]):
        assert_same(ours(batch, **options), hf(batch, **options))


PAIR_OPTIONS = [
    {},
    {"padding": True, "truncation": True, "max_length": 512},
    {"padding": "max_length", "truncation": "longest_first", "max_length": 32},
    {"padding": True, "truncation": "only_second", "max_length": 64},
    {"truncation": "only_first", "max_length": 64},
]


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
    for batch in chunks(pairs):
        a, b = [p[0] for p in batch], [p[1] for p in batch]
        assert_same(ours(a, b, **options), hf(a, b, **options))


def test_single_string_and_tensors_match(ours: Tokenizer, hf: Any) -> None:
    text, pair = CRAFTED[3], CRAFTED[5]
    assert_same(ours(text), hf(text))
    assert_same(ours(text, pair), hf(text, pair))
    mine = ours([text, pair], padding=True, return_tensors="pt")
    theirs = hf([text, pair], padding=True, return_tensors="pt")
    for key in KEYS:
        assert torch.equal(mine[key], theirs[key])


def test_overflow_windows_match(ours: Tokenizer, hf: Any, corpus: dict[str, Any]) -> None:
    long_lines = sorted(corpus["lines"], key=len)[-40:]
    options = {
        "max_length": 48,
        "stride": 8,
        "truncation": True,
        "padding": True,
        "return_overflowing_tokens": True,
    }
    mine, theirs = ours(long_lines, **options), hf(long_lines, **options)
    assert_same(mine, theirs, (*KEYS, "overflow_to_sample_mapping"))
    assert len(mine["input_ids"]) > len(long_lines)


def test_offsets_word_ids_and_masks_match(ours: Tokenizer, hf: Any, corpus: dict[str, Any]) -> None:
    sample = corpus["lines"][::5][:300]
    options = {
        "return_offsets_mapping": True,
        "return_special_tokens_mask": True,
        "padding": True,
        "truncation": True,
    }
    for batch in chunks(sample):
        mine, theirs = ours(batch, **options), hf(batch, **options)
        assert_same(mine, theirs, (*KEYS, "special_tokens_mask"))
        assert [[tuple(o) for o in row] for row in mine["offset_mapping"]] == [
            [tuple(o) for o in row] for row in theirs["offset_mapping"]
        ]
        for i in range(len(batch)):
            assert mine.word_ids(i) == theirs.word_ids(i)
            assert mine.tokens(i) == theirs.tokens(i)


def test_decode_and_tokenize_match(ours: Tokenizer, hf: Any, corpus: dict[str, Any]) -> None:
    sample = corpus["lines"][::7][:300]
    ids = hf(sample, truncation=True)["input_ids"]
    for skip in (True, False):
        assert ours.batch_decode(ids, skip_special_tokens=skip) == hf.batch_decode(
            ids, skip_special_tokens=skip
        )
        assert ours.decode(ids[0], skip_special_tokens=skip) == hf.decode(
            ids[0], skip_special_tokens=skip
        )
    for text in sample[:100]:
        assert ours.tokenize(text) == hf.tokenize(text)
    assert ours.convert_ids_to_tokens(ids[1]) == hf.convert_ids_to_tokens(ids[1])


def test_vocab_txt_only_matches_tokenizer_json(
    ours: Tokenizer, minilm_path: Path, tmp_path: Path, corpus: dict[str, Any]
) -> None:
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_path / name, tmp_path / name)
    bare = Tokenizer.from_pretrained(tmp_path)
    assert bare.kind == "wordpiece" and bare.model_max_length == 512
    assert bare.special_ids == ours.special_ids
    for batch in chunks(corpus["lines"], 256):
        assert_same(bare(batch, truncation=True), ours(batch, truncation=True))
    for batch in chunks(corpus["pairs"], 256):
        a, b = [p[0] for p in batch], [p[1] for p in batch]
        assert_same(bare(a, b, max_length=64), ours(a, b, max_length=64))


def test_saved_minilm_loads_in_transformers(
    ours: Tokenizer, tmp_path: Path, corpus: dict[str, Any]
) -> None:
    ours.save_pretrained(tmp_path)
    reloaded_hf = AutoTokenizer.from_pretrained(tmp_path)
    assert type(reloaded_hf).__name__ == "BertTokenizer"
    assert Tokenizer.from_pretrained(tmp_path).fingerprint() == ours.fingerprint()
    lines = corpus["lines"][:500]
    assert_same(ours(lines, truncation=True), reloaded_hf(lines, truncation=True))
