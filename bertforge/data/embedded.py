"""The embedded demo corpus: English prose that ships with every Python (docs/design.md).

`pydoc_data.topics` (the language reference topics) plus the docstrings of the standard
library, read by parsing the source files with `ast`: modules are never imported, since some
have side effects (`antigravity` opens a browser). Paragraphs that are not prose (code,
doctests, grammar, tables) are dropped and duplicates removed. The output has one document
per topic/module, one paragraph per line and a blank line between documents, in a fixed
order, so `build-data --doc-format blank-line` reads it as intended.
"""

from __future__ import annotations

import ast
import logging
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from bertforge.atomic import atomic_path

logger = logging.getLogger(__name__)

# Stdlib folders without useful prose, or with files that are not valid Python.
SKIP_DIRS = frozenset(
    {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3", "turtledemo",
     "__pycache__", "pydoc_data", "ensurepip", "encodings", "__phello__"}
)  # fmt: skip
MIN_WORDS = 6
MIN_LETTER_SHARE = 0.8  # letters among non-space characters: tables and code fall below
# Doctests, grammar, shell prompts, braces, signatures, assignments, rules, code headers.
_CODE = re.compile(
    r">>>|::=|\.\.\. |\$ |[{}]|\w\(.*\)\s*->| = |==|^\s*[-=*~^]{4,}\s*$"
    r"|^\s*(?:def|class|import|from|return|for|while|if|elif|else|try|except|with)\b.*:\s*$",
    re.MULTILINE,
)
_BULLET = re.compile(r"^[*-] ")


def prose_paragraphs(text: str) -> Iterator[str]:
    """Paragraphs of `text` (blank-line separated) that read as prose, each on one line."""
    for block in re.split(r"\n[ \t]*\n", text.strip("\n")):
        if _CODE.search(block):
            continue
        para = _BULLET.sub("", " ".join(block.split()))
        if len(para.split()) < MIN_WORDS or not para[0].isupper():
            continue
        if para.rstrip("\"')”’")[-1:] not in (".", "?", "!", ":"):
            continue  # fragments: signatures, headings, table rows
        visible = para.replace(" ", "")
        if sum(c.isalpha() for c in visible) >= MIN_LETTER_SHARE * len(visible):
            yield para


def _docstrings(source: str) -> Iterator[str]:
    """Docstrings of a module and of its classes and functions, in source order."""
    tree = ast.parse(source)
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(tree):
        if isinstance(node, nodes) and (doc := ast.get_docstring(node, clean=True)):
            yield doc


def _stdlib_sources() -> Iterator[str]:
    """Sources of the pure-Python standard library, sorted by path."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_DIRS.intersection(rel.parts[:-1]) or rel.name.startswith("test_"):
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        yield source


def _documents() -> Iterator[list[str]]:
    """Prose paragraphs of each pydoc topic, then of each stdlib module."""
    from pydoc_data.topics import topics  # a plain dict of strings: safe to import

    for topic in sorted(topics):
        yield list(prose_paragraphs(topics[topic]))
    for source in _stdlib_sources():
        try:
            docs = list(_docstrings(source))
        except (SyntaxError, ValueError):
            continue  # files kept as deliberately broken examples
        yield [p for doc in docs for p in prose_paragraphs(doc)]


def write_embedded_corpus(path: str | Path) -> Path:
    """Write the corpus to `path` (atomically) and return it; a few MB of English prose."""
    target = Path(path)
    seen: set[str] = set()
    documents = paragraphs = 0
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as out:
        for paras in _documents():
            fresh = [p for p in dict.fromkeys(paras) if p not in seen]
            seen.update(fresh)
            if not fresh:
                continue
            if documents:
                out.write("\n")
            out.write("\n".join(fresh) + "\n")
            documents += 1
            paragraphs += len(fresh)
    logger.info(
        "wrote %d documents, %d paragraphs (%.1f MB) of Python's own docs to %s",
        documents, paragraphs, target.stat().st_size / 1e6, target,
    )  # fmt: skip
    return target
