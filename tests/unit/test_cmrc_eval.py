"""The CMRC 2018 metric, on cases worked out by hand from the official `cmrc2018_evaluate.py`
(v5): what it removes, how it cuts Chinese and English, and its contiguous-run F1."""

from __future__ import annotations

import pytest

from bertforge.tasks.formats import Answer, SquadExample
from bertforge.tasks.scoring import cmrc_evaluate
from bertforge.tasks.scoring.cmrc_eval import cmrc_exact_match, cmrc_f1, mixed_segmentation


@pytest.mark.parametrize(
    ("prediction", "gold", "em"),
    [
        ("《红楼梦》", "红楼梦", 1.0),  # book-title marks are in its punctuation list
        ("北京，上海", "北京上海", 1.0),  # full-width comma too
        ("ABC公司", "abc公司", 1.0),  # lowercased
        ("  曹雪芹 ", "曹雪芹", 1.0),  # stripped
        ("1990 年", "1990年", 0.0),  # inner spaces stay
        ("好…", "好", 0.0),  # its list holds "……" (two characters): a lone "…" stays
        ("北京", "北京大学", 0.0),
    ],
)
def test_exact_match(prediction: str, gold: str, em: float) -> None:
    assert cmrc_exact_match(prediction, gold) == em


def test_segments_cut_chinese_by_character_and_english_by_word() -> None:
    assert mixed_segmentation("iPhone 4S手机") == ["iphone", "4s", "手", "机"]
    assert mixed_segmentation("《三体》，2008年") == ["《", "三", "体", "》", "，", "2008", "年"]
    plain = mixed_segmentation("《三体》，2008年", drop_punctuation=True)
    assert plain == ["三", "体", "2008", "年"]
    assert mixed_segmentation("u.s. dollars") == ["u.s.", "dollars"]


@pytest.mark.parametrize(
    ("prediction", "gold", "f1"),
    [
        ("北京", "北京", 1.0),
        ("北京大学", "北京", 2 * 0.5 * 1.0 / 1.5),  # run 2: P 2/4, R 2/2
        # Contiguous: 北 and 大 are both in the answer but not next to each other there, so
        # the run is 1 (P 1/2, R 1/4); a bag-of-characters F1 would give 2/3.
        ("北大", "北京大学", 2 * 0.5 * 0.25 / 0.75),
        ("iPhone 4S", "iphone 4s手机", 2 * 1.0 * 0.5 / 1.5),  # English words are segments
        ("1990 年", "1990年", 1.0),  # spaces only separate English words
        ("上海", "北京", 0.0),
        ("，", "北京", 0.0),  # nothing left after punctuation
    ],
)
def test_character_f1(prediction: str, gold: str, f1: float) -> None:
    assert cmrc_f1(prediction, gold) == pytest.approx(f1)


def test_best_answer_counts_and_missing_predictions_score_zero() -> None:
    def example(qid: str, *answers: str) -> SquadExample:
        return SquadExample(qid, "", "", "", tuple(Answer(a, None) for a in answers))

    examples = [example("q1", "北京大学", "北京"), example("q2", "上海"), example("q3", "广州")]
    result = cmrc_evaluate(examples, {"q1": "北京", "q2": "上海市"})
    # q1: EM 1 and F1 1 (second answer); q2: EM 0, F1 run 2 of 3 and 2 -> 0.8; q3: missing.
    assert result["exact_match"] == pytest.approx(100 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 0.8) / 3)
    assert (result["total"], result["skipped"]) == (3, 1)
