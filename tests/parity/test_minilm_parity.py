"""The real all-MiniLM-L6-v2 checkpoint: bertforge (tokenizer + encoder) equals transformers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
from torch.testing import assert_close

from bertforge import Encoder
from bertforge.tokenization import Tokenizer

CRAFTED = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "Café crème brûlée, naïve façade, Ångström, Œuvre.",
    "Ünïcödé äccents everywhere: São Paulo, Zürich, Kraków, Reykjavík.",
    "北京是中华人民共和国的首都。",
    "東京タワーは高さ333メートルです。",
    "서울은 대한민국의 수도입니다.",
    "Emoji test 😀🎉🚀👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "Mixed 中文 and English in one sentence 🙂.",
    "    leading and trailing whitespace    ",
    "tabs\tand\nnewlines\r\ninside",
    "UPPERCASE SHOUTING TEXT SHOULD BE LOWERCASED",
    "numbers 3.14159 2,718 1e-10 0x1F #hashtag @mention",
    "URLs like https://example.com/path?q=1&r=2 and emails a.b@c.org",
    "Punctuation!!! ??? ... --- ((nested)) [brackets] {braces}",
    "a",
    "",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Ελληνικά κείμενα με τόνους",
    "Русский текст для проверки токенизации",
    "עברית מימין לשמאל",
    "العربية من اليمين إلى اليسار",
    "zero\u200bwidth\u200bspaces and soft\u00adhyphens",
    "Combining marks: e\u0301 vs é, n\u0303 vs ñ",
    "control chars \x07 bell \x1b escape",
    "x" * 300,
    "word " * 700,  # far past 512 tokens: exercises truncation to max length
]


def varied_texts() -> list[str]:
    from pydoc_data.topics import topics

    docs = [" ".join(t.split()) for t in topics.values()]
    long_docs = [d for d in docs if len(d) > 4000][:12]  # > 512 tokens each
    medium = [d[:400] for d in docs[:30]]
    return CRAFTED + long_docs + medium


@pytest.fixture(scope="module")
def models(minilm_path: Path) -> tuple:
    return (
        Tokenizer.from_pretrained(minilm_path),
        Encoder.from_pretrained(minilm_path),
        transformers.AutoTokenizer.from_pretrained(minilm_path),
        transformers.AutoModel.from_pretrained(minilm_path).eval(),
    )


def compare(models: tuple, a: list[str], b: list[str] | None, max_length: int) -> None:
    tok, enc, hf_tok, hf = models
    kw = {"max_length": max_length, "truncation": True, "padding": True, "return_tensors": "pt"}
    ours = tok(a, b, **kw)
    theirs = hf_tok(a, b, **kw)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert torch.equal(ours[key], theirs[key]), key
    with torch.no_grad():
        mine = enc(**ours)
        ref = hf(**theirs)
    keep = ours["attention_mask"].bool()
    assert_close(mine.last_hidden_state[keep], ref.last_hidden_state[keep], atol=1e-5, rtol=1e-5)
    assert_close(mine.pooler_output, ref.pooler_output, atol=1e-5, rtol=1e-5)


def test_enough_varied_texts() -> None:
    texts = varied_texts()
    assert len(texts) >= 64
    assert any(len(t.split()) > 600 for t in texts)


@pytest.mark.parametrize("max_length", [512, 64])
def test_single_texts(models: tuple, max_length: int) -> None:
    texts = varied_texts()
    for i in range(0, len(texts), 16):
        compare(models, texts[i : i + 16], None, max_length)


def test_pairs(models: tuple) -> None:
    texts = varied_texts()
    firsts, seconds = texts[::2], texts[1::2]
    n = min(len(firsts), len(seconds))
    for i in range(0, n, 16):
        compare(models, firsts[i : min(i + 16, n)], seconds[i : min(i + 16, n)], 512)


def test_padding_does_not_change_real_positions(models: tuple) -> None:
    tok, enc, _, _ = models
    texts = ["short one", "a considerably longer sentence that forces padding on the first"]
    batch = tok(texts, padding=True, return_tensors="pt")
    alone = tok(texts[:1], return_tensors="pt")
    with torch.no_grad():
        padded = enc(**batch).last_hidden_state[0, : alone["input_ids"].shape[1]]
        single = enc(**alone).last_hidden_state[0]
    assert_close(padded, single, atol=1e-5, rtol=1e-5)
