"""CoNLL-2003 style NER files: one `word ... TAG` line per token, blank line between sentences.

Tags come out in IOB2 (every entity starts with B-), whatever the file used; the original
CoNLL-2003 release is IOB1, where B- only separates two adjacent entities of the same type.
Chinese NER sets put one character per line (`字 B-LOC`, "char-bio"): the same reader, held to
strict BIO (`ner_scheme`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bertforge.errors import ConfigError, DataError
from bertforge.textio import read_text

logger = logging.getLogger(__name__)

SCHEMES = ("auto", "iob1", "iob2")
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class Sentence:
    """Words and their IOB2 tags; `guid` is `file:line` of the first word."""

    words: list[str]
    tags: list[str]
    guid: str


def ner_scheme(file_format: str) -> str:
    """How tags are read for a file format: CoNLL files may be IOB1 (guessed), char-bio files
    are BIO, so an I- that opens an entity is an error there, not a convention."""
    return "iob2" if file_format == "char-bio" else "auto"


def _check_tag(path: Path, line: int, tag: str) -> None:
    if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
        raise DataError(
            f"{path}:{line}: tag {tag!r} is not O, B-TYPE or I-TYPE; only IOB1/IOB2 (BIO) files "
            "are read: convert BIOES/BMES tags first (S- to B-, M- and E- to I-)"
        )


def _opens_entity(previous: str, tag: str) -> bool:
    """True for an I- tag that starts an entity (after O, another type, or sentence start)."""
    return tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:])


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """Rewrite I- tags that open an entity as B-; IOB2 input comes back unchanged."""
    out = []
    previous = "O"
    for tag in tags:
        out.append("B-" + tag[2:] if _opens_entity(previous, tag) else tag)
        previous = tag
    return out


def _parse(path: Path) -> list[tuple[list[str], list[str], list[int]]]:
    """(words, raw tags, line numbers) per sentence."""
    sentences = []
    words: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    for number, raw in enumerate([*read_text(path).splitlines(), ""], start=1):
        fields = raw.split()
        if not fields or fields[0] == DOCSTART:
            if words:
                sentences.append((words, tags, lines))
                words, tags, lines = [], [], []
            continue
        if len(fields) < 2:
            raise DataError(
                f"{path}:{number}: expected 'word ... TAG' (space-separated), got {raw!r}"
            )
        _check_tag(path, number, fields[-1])
        words.append(fields[0])
        tags.append(fields[-1])
        lines.append(number)
    return sentences


def _first_opening_i(
    parsed: Iterable[tuple[list[str], list[str], list[int]]],
) -> tuple[int, str] | None:
    """(line, tag) of the first I- tag that opens an entity: proof the file is IOB1."""
    for _, tags, lines in parsed:
        previous = "O"
        for tag, line in zip(tags, lines, strict=True):
            if _opens_entity(previous, tag):
                return line, tag
            previous = tag
    return None


def read_conll(path: str | Path, scheme: str = "auto") -> list[Sentence]:
    """Read a CoNLL file (last column = NER tag), skipping `-DOCSTART-` lines; tags in IOB2.

    `scheme="auto"` treats the file as IOB1 if any I- tag opens an entity, else IOB2;
    `"iob2"` rejects such a tag instead of guessing.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CoNLL file '{path}' does not exist; check the path")
    parsed = _parse(path)
    if not parsed:
        raise DataError(f"'{path}' holds no sentences; expected 'word POS chunk TAG' lines")
    opening = _first_opening_i(parsed)
    if scheme == "iob2" and opening is not None:
        raise DataError(
            f"{path}:{opening[0]}: {opening[1]!r} starts an entity, which BIO (IOB2) forbids; "
            "fix the tag, or read the file as IOB1 (scheme='iob1' or 'auto'; `finetune ner "
            "--format conll`)"
        )
    if scheme == "auto":
        scheme = "iob1" if opening is not None else "iob2"
    sentences = [
        Sentence(words, iob1_to_iob2(tags) if scheme == "iob1" else tags, f"{path.name}:{lines[0]}")
        for words, tags, lines in parsed
    ]
    tokens = sum(len(s.words) for s in sentences)
    logger.info("read %d sentences, %d tokens (%s) from %s", len(sentences), tokens, scheme, path)
    return sentences


def ner_labels(sentences: Iterable[Sentence]) -> list[str]:
    """`O`, then B-/I- for every entity type seen, sorted: stable across runs and complete
    even when a type only ever appears as single-word entities."""
    types = {tag[2:] for s in sentences for tag in s.tags if tag != "O"}
    return ["O", *sorted(f"{prefix}-{t}" for t in types for prefix in "BI")]
