"""Embedding-training data: text pairs, and retrieval sets to score embeddings on.

Pairs come from a .jsonl/.csv/.tsv file with named fields (an anchor, its positive, optional
hard negatives, or a gold similarity score for scored pairs such as STS-B), or from a
SQuAD-format .json (question, its paragraph). A retrieval set is a folder of
`corpus.jsonl` ({"_id", "text"[, "title"]}), `queries.jsonl` ({"_id", "text"}) and
`qrels.jsonl` ({"query-id", "corpus-id"}), BEIR's layout, or a SQuAD-format .json: each
question against every distinct paragraph (SQuAD v1.1 dev: 10,570 questions, 2,067
paragraphs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bertforge.errors import DataError
from bertforge.tasks.formats.squad_json import read_squad
from bertforge.tasks.formats.text_files import read_records, record_field


@dataclass(frozen=True)
class Pair:
    """An anchor and its positive; hard negatives (never the positive of this anchor); or,
    for a scored pair, the gold similarity."""

    anchor: str
    positive: str
    negatives: tuple[str, ...] = ()
    score: float | None = None


def is_squad(path: Path) -> bool:
    return path.name.endswith((".json", ".json.gz"))


def read_pairs(
    path: str | Path,
    anchor: str = "anchor",
    positive: str = "positive",
    negatives: Sequence[str] = (),
    score: str | None = None,
) -> list[Pair]:
    """Pairs from a file whose fields the arguments name (SQuAD: question, paragraph)."""
    path = Path(path)
    if is_squad(path):
        return [Pair(e.question, e.context) for e in read_squad(path, answers_required=False)]
    pairs = []
    fields = (anchor, positive, *negatives)
    for line, record in read_records(path):
        texts = [record_field(path, line, record, name) for name in fields]
        for name, text in zip(fields, texts, strict=True):
            if not text.strip():
                raise DataError(f"{path}:{line}: field {name!r} is empty; fill it in or drop it")
        gold = None
        if score is not None:
            raw = record_field(path, line, record, score)
            try:
                gold = float(raw)
            except ValueError:
                raise DataError(f"{path}:{line}: score {raw!r} is not a number") from None
        pairs.append(Pair(texts[0], texts[1], tuple(texts[2:]), gold))
    return pairs


@dataclass
class RetrievalSet:
    """Queries, a corpus and which corpus entries answer each query (by id)."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]] = field(default_factory=dict)  # query id -> corpus ids


def read_retrieval(path: str | Path) -> RetrievalSet:
    """A BEIR-style folder or a SQuAD-format file; every qrels id must exist."""
    path = Path(path)
    if is_squad(path):
        return _squad_retrieval(path)
    if not path.is_dir():
        raise DataError(
            f"retrieval set '{path}' is neither a folder (corpus.jsonl, queries.jsonl, "
            "qrels.jsonl) nor a SQuAD-format .json"
        )
    corpus = {}
    for line, record in read_records(path / "corpus.jsonl"):
        title = record.get("title") or ""
        text = record_field(path / "corpus.jsonl", line, record, "text")
        corpus[_id(path / "corpus.jsonl", line, record, "_id")] = f"{title} {text}".strip()
    queries = {
        _id(path / "queries.jsonl", line, record, "_id"): record_field(
            path / "queries.jsonl", line, record, "text"
        )
        for line, record in read_records(path / "queries.jsonl")
    }
    relevant: dict[str, set[str]] = {}
    qrels = path / "qrels.jsonl"
    for line, record in read_records(qrels):
        if float(record.get("score", 1)) <= 0:
            continue
        query, doc = _id(qrels, line, record, "query-id"), _id(qrels, line, record, "corpus-id")
        for value, known, name in ((query, queries, "queries"), (doc, corpus, "corpus")):
            if value not in known:
                raise DataError(f"{qrels}:{line}: id {value!r} is not in {name}.jsonl; fix qrels")
        relevant.setdefault(query, set()).add(doc)
    if not relevant:
        raise DataError(f"'{qrels}' marks no relevant document; nothing can be scored")
    return RetrievalSet({q: queries[q] for q in relevant}, corpus, relevant)


def _squad_retrieval(path: Path) -> RetrievalSet:
    paragraphs: dict[str, str] = {}  # text -> id: a paragraph asked about twice is one entry
    queries, relevant = {}, {}
    for example in read_squad(path, answers_required=False):
        doc = paragraphs.setdefault(example.context, f"p{len(paragraphs)}")
        queries[example.id] = example.question
        relevant[example.id] = {doc}
    return RetrievalSet(queries, {i: text for text, i in paragraphs.items()}, relevant)


def _id(path: Path, line: int, record: dict, key: str) -> str:
    value = record.get(key)
    if value is None:
        raise DataError(f"{path}:{line}: no {key!r}; found {', '.join(map(repr, record))}")
    return value if isinstance(value, str) else json.dumps(value)
