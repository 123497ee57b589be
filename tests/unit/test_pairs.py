"""Embedding-training data: pairs by named fields (hard negatives, scores) or from SQuAD,
retrieval sets (BEIR folder, SQuAD dev as 2,067 paragraphs), and one-line errors naming the
file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertforge.errors import DataError
from bertforge.tasks.formats.pairs import Pair, read_pairs, read_retrieval


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_pairs_by_field_names(tmp_path: Path) -> None:
    rows = [{"q": "who wrote it?", "doc": "she did", "neg": "nobody"}]
    got = read_pairs(jsonl(tmp_path / "p.jsonl", rows), "q", "doc", ["neg"])
    assert got == [Pair("who wrote it?", "she did", ("nobody",))]
    (tmp_path / "sts.tsv").write_text("s1\ts2\tscore\na\tb\t4.5\n", encoding="utf-8")
    assert read_pairs(tmp_path / "sts.tsv", "s1", "s2", score="score") == [Pair("a", "b", (), 4.5)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"anchor": "a"}, r"p\.jsonl:2: no value for column 'positive'"),
        ({"anchor": "a", "positive": "  "}, r"p\.jsonl:2: field 'positive' is empty"),
    ],
)
def test_bad_pairs_name_the_line_and_field(tmp_path: Path, row: dict, message: str) -> None:
    path = jsonl(tmp_path / "p.jsonl", [{"anchor": "x", "positive": "y"}, row])
    with pytest.raises(DataError, match=message):
        read_pairs(path)


def test_a_retrieval_folder_and_its_checks(tmp_path: Path) -> None:
    jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "title": "T", "text": "one"},
                                      {"_id": "d2", "text": "two"}])  # fmt: skip
    jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "first?"},
                                       {"_id": "q2", "text": "unjudged"}])  # fmt: skip
    jsonl(tmp_path / "qrels.jsonl", [{"query-id": "q1", "corpus-id": "d2", "score": 1}])
    found = read_retrieval(tmp_path)
    assert found.corpus == {"d1": "T one", "d2": "two"}
    assert found.queries == {"q1": "first?"} and found.relevant == {"q1": {"d2"}}
    jsonl(tmp_path / "qrels.jsonl", [{"query-id": "q1", "corpus-id": "d9"}])
    with pytest.raises(DataError, match=r"qrels\.jsonl:1: id 'd9' is not in corpus\.jsonl"):
        read_retrieval(tmp_path)


def test_squad_dev_is_a_retrieval_set_of_its_paragraphs(shared_data: Path) -> None:
    found = read_retrieval(shared_data / "squad" / "dev-v1.1.json")
    assert (len(found.queries), len(found.corpus)) == (10570, 2067)
    assert all(len(docs) == 1 and docs <= found.corpus.keys() for docs in found.relevant.values())
    pairs = read_pairs(shared_data / "squad" / "dev-v1.1.json")
    assert len(pairs) == 10570 and {p.positive for p in pairs} == set(found.corpus.values())


def test_an_eval_limit_keeps_the_whole_corpus() -> None:
    """`--max-eval-examples N` scores the first N queries (and STS pairs) against every
    document: cutting the corpus would change what retrieval means."""
    from bertforge.tasks.embed import DevText, EmbedTask

    rows = [DevText("query", f"q{i}", "?") for i in range(3)]
    rows += [DevText("doc", f"d{i}", ".") for i in range(4)]
    rows += [DevText("sts_a", "0", "a", 1.0), DevText("sts_b", "0", "b"),
             DevText("sts_a", "1", "c", 2.0), DevText("sts_b", "1", "d")]  # fmt: skip
    kept = EmbedTask().first(rows, 1)
    assert [e.key for e in kept if e.role == "query"] == ["q0"]
    assert sum(e.role == "doc" for e in kept) == 4
    sts = [(e.role, e.key) for e in kept if e.role.startswith("sts")]
    assert sts == [("sts_a", "0"), ("sts_b", "0")]
