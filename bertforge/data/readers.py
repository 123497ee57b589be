"""Stream documents out of text files, directories, `.gz`, JSON lines and WikiExtractor output.

A document is a list of paragraphs (strings); sentences are split later, in the workers.
Nothing here holds more than one document in memory.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

from bertforge.errors import DataError
from bertforge.textio import decode_lines, resolve_files

logger = logging.getLogger(__name__)

DOC_FORMATS = ("blank-line", "line", "jsonl", "wiki")
INPUT_SUFFIXES = (".txt", ".gz", ".jsonl")
# WikiExtractor section headings are short lines ending in "." ("History.", "Early life and
# family ancestry."); in enwiki nearly all such lines of <= 6 words are headings.
HEADING_MAX_WORDS = 6
_WIKI_OPEN = re.compile(r"<doc[\s>]")
# A line that ends a sentence: a terminator, then closing quotes or brackets. Wrapped prose ends
# a line there one time in five or so; one sentence per line, nearly always.
_ENDS_SENTENCE = re.compile(r"""[.?!…。！？]["'”’»)\]」』）]*$""")
SENTENCE_PER_LINE_SHARE = 0.8


@dataclass
class ReadStats:
    """Running totals, updated as documents are read (the builder reports them as progress)."""

    bytes: int = 0  # raw bytes read; decompressed for .gz
    bad_utf8_lines: int = 0


def resolve_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Input files in order; directories expand recursively to *.txt, *.gz and *.jsonl."""
    return resolve_files(paths, suffixes=INPUT_SUFFIXES)


def text_size(path: Path) -> int:
    """Bytes of text in a file; for .gz the gzip trailer's size field (exact for one-member
    files below 4 GiB, which is all a progress bar needs)."""
    size = path.stat().st_size
    if path.suffix != ".gz" or size < 4:  # a broken .gz fails when read, with a clear error
        return size
    with path.open("rb") as fh:
        fh.seek(-4, 2)
        return int.from_bytes(fh.read(4), "little")


def _lines(path: Path, skip_bad_utf8: bool, stats: ReadStats) -> Iterator[str]:
    """Every line of a file (blank ones included), line ending stripped, UTF-8 checked."""
    bad = []
    on_bad = (lambda: bad.append(1)) if skip_bad_utf8 else None
    for line, size in decode_lines(path, on_bad, hint=", or pass --skip-bad-utf8"):
        stats.bytes += size
        yield line
    if bad:
        stats.bad_utf8_lines += len(bad)
        logger.warning("'%s': replaced invalid UTF-8 in %d lines (--skip-bad-utf8)", path, len(bad))


def _paragraphs(block: list[str]) -> list[str]:
    """A document's lines as paragraphs: wrapped prose is one paragraph; when nearly every line
    ends a sentence, the file is google-research/bert's one sentence per line, and each line
    stays a sentence of its own (even before a lowercase start, which the splitter never
    splits at: "e.g. the")."""
    ended = sum(bool(_ENDS_SENTENCE.search(line)) for line in block)
    if len(block) > 1 and ended >= SENTENCE_PER_LINE_SHARE * len(block):
        return block
    return [" ".join(block)]


def _blank_line_docs(lines: Iterator[str]) -> Iterator[list[str]]:
    # A block of non-blank lines is one document.
    block: list[str] = []
    for line in lines:
        if text := line.strip():
            block.append(text)
        elif block:
            yield _paragraphs(block)
            block = []
    if block:
        yield _paragraphs(block)


def _line_docs(lines: Iterator[str]) -> Iterator[list[str]]:
    for line in lines:
        if text := line.strip():
            yield [text]


# Entity spans of JSONL records travel inside the text, between two Unicode noncharacters
# (never in interchanged text), through sentence splitting to the workers (`take_marks`).
ENTITY_OPEN, ENTITY_CLOSE = "\ufdd0", "\ufdd1"


def _jsonl_docs(
    lines: Iterator[str], path: Path, key: str, entities: str | None = None
) -> Iterator[list[str]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"'{path}' line {number} is not valid JSON ({e.msg})") from None
        value = record.get(key) if isinstance(record, dict) else None
        if not isinstance(value, str):
            raise DataError(
                f"'{path}' line {number} has no text field '{key}'; pass --jsonl-field NAME"
            )
        if entities is not None:
            value = _mark_entities(value, record.get(entities, []), f"'{path}' line {number}")
        # Each line of the field is a paragraph: sentences do not run across them.
        yield [p.strip() for p in value.splitlines() if p.strip()]


def _mark_entities(text: str, spans: Any, where: str) -> str:
    """`text` with each [start, end) character span of `spans` wrapped in the entity marks."""
    if ENTITY_OPEN in text or ENTITY_CLOSE in text:
        raise DataError(f"{where}: the text holds U+FDD0/U+FDD1, reserved for entity marks")
    pairs = isinstance(spans, list) and all(
        isinstance(x, list) and len(x) == 2 and all(isinstance(i, int) for i in x) for x in spans
    )
    ordered = sorted(spans) if pairs else []
    inside = all(0 <= s < e <= len(text) for s, e in ordered)
    disjoint = all(a[1] <= b[0] for a, b in pairwise(ordered))
    if not (pairs and inside and disjoint):
        raise DataError(
            f"{where}: entities must be [[start, end], ...] character spans inside the text, "
            f"not overlapping; got {json.dumps(spans)[:120]}"
        )
    for s, e in reversed(ordered):
        text = text[:s] + ENTITY_OPEN + text[s:e] + ENTITY_CLOSE + text[e:]
    return text


def take_marks(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`text` without entity marks, and the [start, end) spans they enclosed. A mark whose
    partner a sentence split cut away closes (or opens) at the sentence's end (start)."""
    if ENTITY_OPEN not in text and ENTITY_CLOSE not in text:
        return text, []
    out, spans, start = [], [], None
    for ch in text:
        if ch == ENTITY_OPEN:
            start = len(out)
        elif ch == ENTITY_CLOSE:
            spans.append((0 if start is None else start, len(out)))
            start = None
        else:
            out.append(ch)
    if start is not None:
        spans.append((start, len(out)))
    return "".join(out), [(s, e) for s, e in spans if e > s]


def _is_heading(line: str) -> bool:
    return line.endswith(".") and line.count(" ") < HEADING_MAX_WORDS


def _wiki_docs(lines: Iterator[str]) -> Iterator[list[str]]:
    doc: list[str] | None = None
    expect_title = False
    for line in lines:
        text = line.strip()
        if _WIKI_OPEN.match(text):
            doc, expect_title = [], True
        elif text == "</doc>":
            if doc is not None:
                yield doc
            doc = None
        elif doc is not None and text:
            if expect_title:
                expect_title = False  # the article title repeats the <doc title=...>
            elif not _is_heading(text):
                doc.append(text)
    if doc:
        yield doc  # a truncated file without the closing </doc>


def _detect(path: Path, lines: Iterator[str], doc_format: str) -> tuple[str, Iterator[str]]:
    """The format of one file: `.jsonl` and files starting with `<doc ` override blank-line."""
    if doc_format != "blank-line":
        return doc_format, lines
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl", lines
    head: list[str] = []
    for line in lines:
        head.append(line)
        if line.strip():
            break
    fmt = "wiki" if head and _WIKI_OPEN.match(head[-1].lstrip()) else doc_format
    return fmt, chain(head, lines)


def read_documents(
    files: Iterable[Path],
    *,
    doc_format: str = "blank-line",
    jsonl_field: str = "text",
    jsonl_entities: str | None = None,
    skip_bad_utf8: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[list[str]]:
    """Documents (lists of paragraph strings, possibly empty) of each file in turn.
    `jsonl_entities` names a field of [start, end] entity spans, marked in the text."""
    if doc_format not in DOC_FORMATS:
        raise DataError(f"--doc-format {doc_format!r}; choose one of {', '.join(DOC_FORMATS)}")
    stats = stats if stats is not None else ReadStats()
    for path in files:
        fmt, lines = _detect(path, _lines(path, skip_bad_utf8, stats), doc_format)
        logger.debug("reading %s as %s", path, fmt)
        if fmt == "blank-line":
            yield from _blank_line_docs(lines)
        elif fmt == "line":
            yield from _line_docs(lines)
        elif fmt == "jsonl":
            yield from _jsonl_docs(lines, path, jsonl_field, jsonl_entities)
        else:
            yield from _wiki_docs(lines)
