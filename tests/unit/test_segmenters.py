"""Word segmenters and the word-start flags they give tokens."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from bertforge.errors import ConfigError, DataError
from bertforge.tokenization.segmenters import (
    Lexicon,
    Segmenter,
    get_segmenter,
    knowledge_spans,
    unit_starts,
    word_spans,
)


def word_starts(
    text: str, offsets: list[tuple[int, int]], words: list[str], name: str = ""
) -> np.ndarray:
    """(N,) bool: which tokens begin one of the segmenter's `words` (as the workers do)."""
    return unit_starts(word_spans(text, words, name), offsets)


def offsets_of(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Character offsets of consecutive `pieces` in `text` (spaces skipped)."""
    out, at = [], 0
    for p in pieces:
        at = text.index(p, at)
        out.append((at, at + len(p)))
        at += len(p)
    return out


def test_tokens_start_words_where_the_segmenter_cuts() -> None:
    text = "我来到北京清华大学，学习machine learning。"
    words = ["我", "来到", "北京", "清华大学", "，", "学习", "machine", " ", "learning", "。"]
    tokens = ["我", "来", "到", "北", "京", "清", "华", "大", "学", "，", "学", "习",
              "mach", "ine", "learn", "ing", "。"]  # fmt: skip
    starts = word_starts(text, offsets_of(text, tokens), words)
    assert starts.astype(int).tolist() == [1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1]


def test_text_outside_any_word_is_a_gap() -> None:
    # A segmenter that drops spaces: the tokens after a gap still start their own word.
    text = "北京 大学"
    starts = word_starts(text, offsets_of(text, ["北", "京", "大", "学"]), ["北京", "大学"])
    assert starts.tolist() == [True, False, True, False]
    assert word_starts("", [], []).shape == (0,)


def test_words_out_of_order_are_a_data_error() -> None:
    with pytest.raises(DataError, match="must return words in order"):
        word_starts("北京大学", [(0, 1)], ["大学", "北京"], "mine")


def test_names_and_callables() -> None:
    assert get_segmenter("none") is None and get_segmenter(None) is None
    chars = get_segmenter("builtins:list")  # any str -> list[str] callable, by import path
    assert isinstance(chars, Segmenter) and chars("北京") == ["北", "京"]
    with pytest.raises(ConfigError, match="unknown; use jieba, rjieba, none or 'module:function'"):
        get_segmenter("ltp")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        get_segmenter("no_such_module:cut")


def test_jieba_segments_and_pickles_by_name() -> None:
    import pickle

    jieba = get_segmenter("jieba")
    assert jieba is not None and jieba("我来到北京清华大学") == ["我", "来到", "北京", "清华大学"]
    copy = pickle.loads(pickle.dumps(jieba))
    assert copy._fn is None and copy("北京大学") == jieba("北京大学")


@pytest.mark.parametrize("name", ["jieba", "rjieba"])
def test_missing_segmenter_says_how_to_install(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    with pytest.raises(ConfigError, match=f"pip install {name}"):
        get_segmenter(name)


def test_rjieba_cuts_like_jieba() -> None:
    """The Rust port: the same words as jieba on ordinary text, spaces kept as words."""
    text = "我来到北京清华大学，学习machine learning。他说的确实在理"
    rust, python = get_segmenter("rjieba"), get_segmenter("jieba")
    assert rust is not None and python is not None
    assert rust(text) == python(text)


def test_flags_are_bools() -> None:
    assert word_starts("ab", [(0, 1), (1, 2)], ["ab"]).dtype == np.bool_


def test_lexicon_matches_leftmost_longest(tmp_path: Path) -> None:
    path = tmp_path / "entities.txt"
    path.write_text("北京\n北京大学\n清华大学\n\n大学城\n", encoding="utf-8")
    lexicon = Lexicon(path)
    text = "我在北京大学城看见清华大学"
    # 北京大学 beats 北京 at 2; 大学城 then overlaps it and is not taken.
    assert [text[s:e] for s, e in lexicon.find(text)] == ["北京大学", "清华大学"]
    assert lexicon.find("没有") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\xb1\xb1\xbe\xa9\n", "is not UTF-8 (line 1"), (b"\n \n", "has no entries")],
)
def test_lexicon_errors_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        Lexicon(path)
    assert "bad.txt" in str(err.value)
    with pytest.raises(DataError, match="cannot be read"):
        Lexicon(tmp_path / "missing.txt")


def test_knowledge_units_are_entities_whole_and_words_outside() -> None:
    text = "我在北京大学城看书"
    words = word_spans(text, ["我", "在", "北京", "大学城", "看书"])
    units = knowledge_spans(words, [(2, 6)])  # the entity 北京大学 cuts the word 大学城
    assert [text[s:e] for s, e in units] == ["我", "在", "北京大学", "城", "看书"]
    assert knowledge_spans(words, []) == words
    offsets = [(i, i + 1) for i in range(len(text))]
    assert unit_starts(units, offsets).astype(int).tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 0]
