"""Readers (document boundaries per format, UTF-8 handling) and the sentence splitter."""

from __future__ import annotations

import gzip
import json
import logging
import sys
from pathlib import Path

import pytest

from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.embedded import write_embedded_corpus
from bertforge.data.readers import (
    ENTITY_CLOSE,
    ENTITY_OPEN,
    ReadStats,
    read_documents,
    resolve_inputs,
    take_marks,
    text_size,
)
from bertforge.data.sentences import split_sentences
from bertforge.errors import DataError
from bertforge.tokenization import Tokenizer

WIKI = """<doc id="12" url="http://en.wikipedia.org/wiki?curid=12" title="Anarchism">
Anarchism

Anarchism is a political philosophy. It advocates stateless societies.
Etymology and terminology.
The term is a compound word. It comes from Greek.
</doc>
<doc id="25" url="http://en.wikipedia.org/wiki?curid=25" title="Autism">
Autism

Autism is a disorder of neural development. It is characterized by impaired interaction.
</doc>
"""


def docs(path: Path, **kw: object) -> list[list[str]]:
    return list(read_documents(resolve_inputs([path]), **kw))  # type: ignore[arg-type]


def test_blank_lines_end_documents_and_wrapped_lines_join(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("One line\nwrapped here.\nSecond.\n\n\n\nNext doc.\r\n\r\nLast\n", "utf-8")
    assert docs(f) == [["One line wrapped here. Second."], ["Next doc."], ["Last"]]
    assert docs(f, doc_format="line") == [
        ["One line"], ["wrapped here."], ["Second."], ["Next doc."], ["Last"]
    ]  # fmt: skip


def test_one_sentence_per_line_keeps_its_sentences(tmp_path: Path, minilm_path: Path) -> None:
    """google-research/bert's input: one sentence per line, blank lines between documents,
    here lowercased, so the splitter alone would see one sentence per document."""
    f = tmp_path / "bert.txt"
    lines = ["the cat sat on the mat.", "it was warm there!", "then it left (for good)."]
    f.write_text("\n".join(lines) + "\n\n" + "\n".join(reversed(lines)) + "\n", "utf-8")
    assert docs(f) == [lines, lines[::-1]]
    result = build_data(Tokenizer.from_pretrained(minilm_path), [f], tmp_path / "out")
    assert result.manifest["counts"]["instances"] > 0


def test_jsonl_field_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    rows = [{"body": "First para. More.\nSecond para."}, {"body": "Other doc."}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", "utf-8")
    assert docs(f, jsonl_field="body") == [["First para. More.", "Second para."], ["Other doc."]]
    with pytest.raises(DataError, match=r"line 1 has no text field 'text'.*--jsonl-field"):
        docs(f)
    f.write_text('{"text": "ok"}\n{not json\n', "utf-8")
    with pytest.raises(DataError, match=r"a.jsonl' line 2 is not valid JSON"):
        docs(f)


def test_jsonl_entity_spans_travel_as_marks(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    text = "我在北京大学读书。\n清华大学也好。"
    rows = [{"text": text, "ents": [[2, 6], [10, 14]]}, {"text": "没有实体。"}]
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    (doc, other) = docs(f, jsonl_entities="ents")
    assert [take_marks(p) for p in doc] == [
        ("我在北京大学读书。", [(2, 6)]),
        ("清华大学也好。", [(0, 4)]),
    ]
    assert other == ["没有实体。"] and take_marks(other[0]) == ("没有实体。", [])
    # A sentence split that cuts an entity closes it at the cut.
    assert take_marks(ENTITY_OPEN + "北京") == ("北京", [(0, 2)])
    assert take_marks("大学" + ENTITY_CLOSE + "读书") == ("大学读书", [(0, 2)])
    for bad in ([[2, 99]], [[2, 6], [5, 8]], [["2", 6]], "2-6"):
        f.write_text(json.dumps({"text": text, "ents": bad}) + "\n", "utf-8")
        with pytest.raises(DataError, match=r"a.jsonl' line 1: entities must be \[\[start, end\]"):
            docs(f, jsonl_entities="ents")


def test_wiki_format_is_detected_and_drops_titles_and_headings(tmp_path: Path) -> None:
    f = tmp_path / "wiki_00"
    f.write_text(WIKI, "utf-8")
    expected = [
        ["Anarchism is a political philosophy. It advocates stateless societies.",
         "The term is a compound word. It comes from Greek."],
        ["Autism is a disorder of neural development. It is characterized by impaired "
         "interaction."],
    ]  # fmt: skip
    assert docs(f) == expected  # auto-detected from the first line
    assert docs(f, doc_format="wiki") == expected


def test_gz_directories_and_text_size(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with gzip.open(tmp_path / "sub" / "b.gz", "wt", encoding="utf-8") as fh:
        fh.write(WIKI)
    (tmp_path / "a.txt").write_text("\ufeffPlain doc.\n", "utf-8")  # BOM dropped
    (tmp_path / "notes.md").write_text("ignored\n", "utf-8")
    files = resolve_inputs([tmp_path])
    assert [f.name for f in files] == ["a.txt", "b.gz"]
    stats = ReadStats()
    got = list(read_documents(files, stats=stats))
    assert got[0] == ["Plain doc."] and len(got) == 3
    assert stats.bytes == sum(text_size(f) for f in files) == len(WIKI) + 14


def test_bad_utf8_names_file_and_offset_or_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    f = tmp_path / "latin.txt"
    f.write_bytes(b"Fine first line.\n\nCaf\xe9 au lait. Tr\xe8s bon.\n")
    with pytest.raises(DataError, match=r"latin.txt' is not valid UTF-8: byte 0xe9 at offset 21"):
        docs(f)
    stats = ReadStats()
    with caplog.at_level(logging.WARNING):
        got = docs(f, skip_bad_utf8=True, stats=stats)
    assert got[1] == ["Caf\ufffd au lait. Tr\ufffds bon."]
    assert stats.bad_utf8_lines == 1 and "replaced invalid UTF-8 in 1 lines" in caplog.text


def test_a_file_cut_inside_a_character_says_it_was_cut(tmp_path: Path) -> None:
    """A UTF-8 file whose last multi-byte character lost its tail (an interrupted copy) is
    not a Latin-1 file: the message says so, in every reader."""
    from bertforge.textio import iter_lines, read_text

    f = tmp_path / "cut.txt"
    f.write_bytes("Fine first line.\nUn café au lait, très bon\n北京".encode()[:-1])
    expected = r"cut\.txt' ends in the middle of a multi-byte UTF-8 character \(byte 0xe4"
    for read in (docs, read_text, lambda p: list(iter_lines(p))):
        with pytest.raises(DataError, match=expected) as raised:
            read(f)
        assert "iconv" not in str(raised.value)
    # A bad byte before the end is another encoding, as before.
    f.write_bytes(b"Caf\xe9 au lait.\n" + "北京".encode())
    with pytest.raises(DataError, match="iconv -f latin1"):
        read_text(f)


def test_empty_corpus_and_short_documents_are_errors(tmp_path: Path, minilm_path: Path) -> None:
    tok = Tokenizer.from_pretrained(minilm_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n", "utf-8")
    with pytest.raises(DataError, match=r"empty corpus: no text in '.*empty.txt'"):
        build_data(tok, [empty], tmp_path / "out")
    short = tmp_path / "short.txt"
    short.write_text("Only one sentence here.\n\nAnother single one.\n", "utf-8")
    with pytest.raises(DataError, match=r"all 2 documents in '.*short.txt' are shorter than two"):
        build_data(tok, [short], tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())  # nothing half-built left behind
    result = build_data(tok, [short], tmp_path / "out", BuildConfig(objective="single"))
    assert result.manifest["counts"]["instances"] == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. Smith met Dr. Jones at 3.14 p.m. today. They talked.",
         ["Mr. Smith met Dr. Jones at 3.14 p.m. today.", "They talked."]),
        ("The U.S. Army won, e.g. in 1945. J. R. R. Tolkien wrote it. So do I. Yes.",
         ["The U.S. Army won, e.g. in 1945.", "J. R. R. Tolkien wrote it.", "So do I.", "Yes."]),
        ('He said "Stop." Then he left! Why? (See Fig. 3.) Done… Now.',
         ['He said "Stop."', "Then he left!", "Why?", "(See Fig. 3.)", "Done…", "Now."]),
        ("这是第一句。这是第二句！第三句？最后",
         ["这是第一句。", "这是第二句！", "第三句？", "最后"]),
        ("no ender at all", ["no ender at all"]),
        ("   ", []),
    ],
)  # fmt: skip
def test_sentence_splitter(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_embedded_corpus_is_prose_from_python_itself(tmp_path: Path) -> None:
    before = set(sys.modules)
    path = write_embedded_corpus(tmp_path / "python-docs.txt")
    assert not {"antigravity", "this", "turtle", "tkinter"} & (set(sys.modules) - before)
    text = path.read_text(encoding="utf-8")
    assert len(text) > 1_000_000 and ">>>" not in text and "::=" not in text
    documents = list(read_documents([path]))
    assert len(documents) > 300 and all(documents)
    lines = [line for line in text.splitlines() if line]
    assert len(lines) == len(set(lines))  # paragraphs are deduplicated
    assert "An augmented assignment evaluates the target" in text  # pydoc topics
    assert "Heap queue algorithm (a.k.a. priority queue)." in text  # heapq's docstring
