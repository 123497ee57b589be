"""SQuAD-format reading, span checks, windows, post-processing and the official metric."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertforge.errors import ConfigError, DataError
from bertforge.tasks.formats import (
    Answer,
    SquadExample,
    encode_eval_features,
    encode_train_features,
    postprocess_predictions,
    read_squad,
)
from bertforge.tasks.scoring import squad_evaluate
from bertforge.tasks.scoring.squad_eval import exact_match, normalize_answer, token_f1
from bertforge.tokenization import Tokenizer


@pytest.fixture(scope="module")
def tok(minilm_path: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def squad_dev(shared_data: Path) -> list[SquadExample]:
    return read_squad(shared_data / "squad" / "dev-v1.1.json")


def squad_file(path: Path, qas: list[dict[str, Any]], context: str) -> Path:
    data = {"data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def example(qid: str, answers: list[str], impossible: bool = False) -> SquadExample:
    return SquadExample(qid, "T", "q?", "ctx", tuple(Answer(a, 0) for a in answers), impossible)


# ---------------------------------------------------------------- official metric
@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The  Cat's hat!", "cats hat"),
        ("an apple, a pear and THE plum.", "apple pear and plum"),
        ("theatre anathema", "theatre anathema"),  # articles only as whole words
        ("  Denver\tBroncos\n", "denver broncos"),
        ("1,000", "1000"),
    ],
)
def test_normalize_answer(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


def test_exact_match_and_token_f1_by_hand() -> None:
    assert exact_match("the Denver Broncos!", "Denver Broncos") == 1.0
    # pred {cat, sat}, gold {cat, sat, on, mat}: precision 1, recall 1/2
    assert token_f1("the cat sat", "a cat sat on the mat") == pytest.approx(2 / 3)
    assert token_f1("cat cat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)  # bag, not set
    assert token_f1("dog", "cat") == 0.0
    # v1.1 scores an answer that normalises to nothing as F1 0; v2.0 as a match
    assert (exact_match("", "the"), token_f1("", "the")) == (1.0, 0.0)
    assert token_f1("", "", version_2=True) == 1.0
    assert token_f1("cat", "", version_2=True) == 0.0


def test_evaluate_takes_max_over_gold_and_zero_for_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    examples = [example("a", ["Broncos", "Denver Broncos"]), example("b", ["1,000 people"])]
    with caplog.at_level(logging.WARNING):
        scores = squad_evaluate(examples, {"a": "denver broncos."})
    assert scores == {"exact_match": 50.0, "f1": 50.0, "total": 2.0}
    assert "1 of 2 questions have no prediction" in caplog.text
    scores = squad_evaluate(examples, {"a": "Broncos", "b": "1000"})
    assert scores["exact_match"] == 50.0
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)  # {1000} vs {1000, people}


def test_evaluate_v2_breakdown() -> None:
    examples = [example("a", ["Paris"]), example("b", [], impossible=True), example("c", ["x"])]
    scores = squad_evaluate(examples, {"a": "Paris", "b": "", "c": ""})
    assert scores["exact_match"] == pytest.approx(200 / 3)
    assert (scores["HasAns_exact_match"], scores["HasAns_total"]) == (50.0, 2.0)
    assert (scores["NoAns_exact_match"], scores["NoAns_f1"], scores["NoAns_total"]) == (100, 100, 1)
    assert squad_evaluate(examples, {"a": "Paris", "b": "Lyon", "c": "x"})["NoAns_f1"] == 0.0


def test_official_dev_gold_scores_100_and_empty_scores_0(
    squad_dev: list[SquadExample],
) -> None:
    assert len(squad_dev) == 10_570
    assert sum(len(e.answers) for e in squad_dev) == 34_726
    assert len({e.context for e in squad_dev}) == 2_067
    assert all(a.start is not None for e in squad_dev for a in e.answers)  # official: all aligned
    gold = squad_evaluate(squad_dev, {e.id: e.answers[0].text for e in squad_dev})
    assert gold == {"exact_match": 100.0, "f1": 100.0, "total": 10_570.0}
    empty = squad_evaluate(squad_dev, {e.id: "" for e in squad_dev})
    # Three questions have "." among their gold answers, which normalises to "": the official
    # v1.1 script counts "" as an exact match there (and F1 0, as it has no tokens).
    assert empty["exact_match"] == pytest.approx(100 * 3 / 10_570)
    assert empty["f1"] == 0.0


# ---------------------------------------------------------------- reading
def test_gz_reads_like_json(shared_data: Path, squad_dev: list[SquadExample]) -> None:
    assert read_squad(shared_data / "squad" / "dev-v1.1.json.gz") == squad_dev
    first = squad_dev[0]
    assert (first.id, first.title) == ("56be4db0acb8001400a502ec", "Super_Bowl_50")
    assert first.question == "Which NFL team represented the AFC at Super Bowl 50?"
    assert first.answers[0] == Answer("Denver Broncos", 177)


def test_misaligned_spans_are_moved_or_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    context = "The cat sat. The cat ran. A dog barked."
    qas = [
        {
            "id": "ok",
            "question": "  Who ran?",
            "answers": [{"text": "cat ran", "answer_start": 17}],
        },
        {"id": "moved", "question": "Who?", "answers": [{"text": "The cat", "answer_start": 11}]},
        {"id": "lost", "question": "Who?", "answers": [{"text": "a bird", "answer_start": -1}]},
    ]
    with caplog.at_level(logging.WARNING):
        ok, moved, lost = read_squad(squad_file(tmp_path / "s.json", qas, context))
    assert ok.answers[0].start == 17 and ok.question == "Who ran?"
    assert moved.answers[0].start == 13  # nearest "The cat" to 11 (not 0)
    assert lost.answers == (Answer("a bird", None),) and lost.train_answer is None
    assert "2 of 3 answer spans did not match their text: 1 moved" in caplog.text
    assert "1 not found in the context" in caplog.text


def test_cmrc_dev_misaligned_counts(shared_data: Path) -> None:
    examples = read_squad(shared_data / "squad-format" / "cmrc2018" / "cmrc2018_dev.json")
    answers = [a for e in examples for a in e.answers]
    assert (len(examples), len(answers)) == (3_219, 9_657)
    assert sum(a.start is None for a in answers) == 193  # the other 7 bad spans were re-located
    assert all(e.context[a.start : a.start + len(a.text)] == a.text
               for e in examples for a in e.answers if a.start is not None)  # fmt: skip


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"SQuAD file '.*nope\.json' does not exist"):
        read_squad(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"data": [', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json: invalid JSON at line 1"):
        read_squad(tmp_path / "bad.json")
    (tmp_path / "gz.json.gz").write_bytes(gzip.compress(b'{"version": "1.1"}'))
    with pytest.raises(DataError, match=r"gz\.json\.gz: the top level has no list 'data'"):
        read_squad(tmp_path / "gz.json.gz")
    path = squad_file(tmp_path / "q.json", [{"id": "x", "answers": []}], "ctx")
    with pytest.raises(DataError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\] has no str 'quest"):
        read_squad(path)


def test_questions_to_predict_may_leave_out_answers(tmp_path: Path) -> None:
    path = squad_file(tmp_path / "q.json", [{"id": "x", "question": "Who?"}], "Ann did.")
    with pytest.raises(DataError, match=r"qas\[0\] has no list 'answers'"):
        read_squad(path)  # training and scoring need gold answers
    (only,) = read_squad(path, answers_required=False)
    assert (only.id, only.question, only.answers, only.is_impossible) == ("x", "Who?", (), False)


# ---------------------------------------------------------------- windows
def test_train_windows_map_back_to_answer_text(shared_data: Path, tok: Tokenizer) -> None:
    examples = read_squad(shared_data / "squad" / "train-v1.1-reconstructed.json.gz")[:300]
    train = encode_train_features(tok, examples)
    evaluation = encode_eval_features(tok, examples)
    assert train["input_ids"] == evaluation["input_ids"]  # same windows, same order
    assert max(len(ids) for ids in train["input_ids"]) <= 384
    by_id = {e.id: e for e in examples}
    inside = matched = 0
    for row, (start, end) in enumerate(
        zip(train["start_positions"], train["end_positions"], strict=True)
    ):
        if start == 0:
            assert end == 0
            continue
        inside += 1
        ex = by_id[evaluation["example_id"][row]]
        offsets = evaluation["offset_mapping"][row]
        answer = ex.train_answer
        assert answer is not None
        matched += ex.context[offsets[start][0] : offsets[end][1]] == answer.text
    assert inside >= len(examples)  # every answer lies inside at least one window
    assert matched / inside >= 0.99


def test_long_context_overlapping_windows(tok: Tokenizer) -> None:
    context = " ".join(f"w{i}" for i in range(300)) + " the answer is here."
    ex = SquadExample("q1", "T", "Where is it?", context, (Answer("here", len(context) - 5),))
    train = encode_train_features(tok, [ex], max_length=64, doc_stride=16)
    evaluation = encode_eval_features(tok, [ex], max_length=64, doc_stride=16)
    rows = len(train["input_ids"])
    assert rows > 1 and evaluation["example_id"] == ["q1"] * rows
    assert train["start_positions"][:-1] == [0] * (rows - 1)  # answer only in the last window
    first, second = (
        [o for o in offs if o is not None] for offs in evaluation["offset_mapping"][:2]
    )
    assert first[-16:] == second[:16]  # consecutive windows share doc_stride context tokens
    start, end = train["start_positions"][-1], train["end_positions"][-1]
    last = evaluation["offset_mapping"][-1]
    assert context[last[start][0] : last[end][1]] == "here"


def test_impossible_question_targets_cls_and_long_questions_are_cut(
    tok: Tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    long_question = "why " * 100 + "?"
    ex = SquadExample("x", "T", long_question, "Nothing to see.", (), is_impossible=True)
    with caplog.at_level(logging.WARNING):
        train = encode_train_features(tok, [ex], max_length=96, doc_stride=8)
    assert (train["start_positions"], train["end_positions"]) == ([0], [0])
    assert train["token_type_ids"][0].count(0) == 64 + 2  # [CLS] 64 question tokens [SEP]
    assert "1 questions were longer than 64 tokens" in caplog.text
    with pytest.raises(ConfigError, match=r"doc_stride=30 must be below the 29 context tokens"):
        encode_train_features(tok, [ex], max_length=96, doc_stride=30)


def test_unlocatable_answers_are_not_trained_on(
    tok: Tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    lost = SquadExample("lost", "T", "Who?", "A dog barked.", (Answer("a bird", None),))
    with caplog.at_level(logging.WARNING):
        train = encode_train_features(tok, [lost, example("a", ["ctx"])])
    assert len(train["input_ids"]) == 1
    assert "skipped 1 of 2 questions for training" in caplog.text


# ---------------------------------------------------------------- post-processing
def _logits(length: int, scores: dict[int, float]) -> np.ndarray:
    out = np.full(length + 5, -10.0)  # longer than the window: trainer padding
    for i, s in scores.items():
        out[i] = s
    return out


def test_postprocess_picks_best_valid_span(tok: Tokenizer) -> None:
    context = "Denver Broncos beat the Carolina Panthers in Santa Clara."
    ex = SquadExample("q", "T", "Who won?", context, (Answer("Denver Broncos", 0),))
    features = encode_eval_features(tok, [ex])
    offsets = features["offset_mapping"][0]
    tokens = [i for i, o in enumerate(offsets) if o is not None]
    denver, broncos, clara = tokens[0], tokens[1], tokens[-2]  # clara: before the final "."
    n = len(offsets)
    # Best raw pairs: (question token 1, 1) is outside the context, (broncos, denver) ends
    # before it starts; the best valid pair is (denver, denver) = 14.
    start = _logits(n, {1: 9.0, broncos: 8.0, denver: 6.0})
    end = _logits(n, {1: 9.0, denver: 8.0, broncos: 5.0})
    assert postprocess_predictions([ex], features, [start], [end]) == {"q": "Denver"}
    # A span longer than max_answer_length is skipped too.
    end = _logits(n, {clara: 9.0, broncos: 1.0})
    start = _logits(n, {denver: 9.0})
    assert postprocess_predictions([ex], features, [start], [end], max_answer_length=3) == {
        "q": "Denver Broncos"
    }


def test_postprocess_v2_null_threshold(tok: Tokenizer) -> None:
    ex = SquadExample("q", "T", "Who?", "Paris is big.", (), is_impossible=True)
    features = encode_eval_features(tok, [ex])
    n = len(features["offset_mapping"][0])
    paris = next(i for i, o in enumerate(features["offset_mapping"][0]) if o is not None)
    start, end = _logits(n, {0: 3.0, paris: 2.0}), _logits(n, {0: 3.0, paris: 2.0})
    # null 6 vs best span 4: diff 2
    assert postprocess_predictions([ex], features, [start], [end], version_2=True) == {"q": ""}
    kwargs = {"version_2": True, "null_score_diff_threshold": 2.5}
    assert postprocess_predictions([ex], features, [start], [end], **kwargs) == {"q": "Paris"}
    assert postprocess_predictions([ex], features, [start], [end]) == {"q": "Paris"}  # v1
