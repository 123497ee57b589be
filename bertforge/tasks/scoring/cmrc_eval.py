"""The official CMRC 2018 evaluation (`cmrc2018_evaluate.py`, v5): exact match and
character-level F1 on a 0–100 scale, the maximum over each question's gold answers.

Both sides are lowercased and stripped. EM compares the strings with the script's
punctuation list removed. F1 cuts each string into segments (every CJK character in
U+4E00–U+9FA5 alone, runs of other characters tokenized as English words), drops the
punctuation, and scores the longest common *contiguous* run of segments:
P = run / prediction segments, R = run / answer segments.

English runs go through NLTK's Treebank-style word tokenizer, the one `nltk.word_tokenize`
applies after its sentence split; the split itself needs downloaded Punkt data and is left
out (it only matters for an answer holding two sentences).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from bertforge.tasks.formats.squad_json import SquadExample

logger = logging.getLogger(__name__)

# The script's list, as it is: "……" is two characters, so a lone "…" is never removed.
PUNCTUATION = frozenset([*"-:_*^/\\~`+=", *"，。：？！“”；’《》", "……", *"·、「」（）－～『』"])


@cache
def _word_tokenizer() -> Any:  # nltk is untyped; imported on first use
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fa5"


def remove_punctuation(text: str) -> str:
    return "".join(ch for ch in text.lower().strip() if ch not in PUNCTUATION)


def mixed_segmentation(text: str, drop_punctuation: bool = False) -> list[str]:
    """CJK characters and punctuation one by one, other runs as English words."""
    segments: list[str] = []
    run = ""
    for ch in text.lower().strip():
        if drop_punctuation and ch in PUNCTUATION:
            continue
        if _is_cjk(ch) or ch in PUNCTUATION:
            if run:
                segments.extend(_word_tokenizer().tokenize(run))
                run = ""
            segments.append(ch)
        else:
            run += ch
    if run:
        segments.extend(_word_tokenizer().tokenize(run))
    return segments


def longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest contiguous sequence of segments in both (dynamic programming)."""
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def cmrc_f1(prediction: str, gold: str) -> float:
    pred = mixed_segmentation(prediction, drop_punctuation=True)
    ans = mixed_segmentation(gold, drop_punctuation=True)
    run = longest_common_run(ans, pred)
    if run == 0:
        return 0.0
    precision, recall = run / len(pred), run / len(ans)
    return 2 * precision * recall / (precision + recall)


def cmrc_exact_match(prediction: str, gold: str) -> float:
    return float(remove_punctuation(prediction) == remove_punctuation(gold))


def cmrc_evaluate(
    examples: Sequence[SquadExample], predictions: Mapping[str, str]
) -> dict[str, float]:
    """`exact_match` and `f1` in 0–100 over all questions; a question without a prediction
    scores 0 and is counted in `skipped` (the script's SKIP)."""
    em = f1 = 0.0
    skipped = 0
    for example in examples:
        prediction = predictions.get(example.id)
        if prediction is None:
            skipped += 1
            continue
        gold = [a.text for a in example.answers]
        em += max((cmrc_exact_match(prediction, g) for g in gold), default=0.0)
        f1 += max((cmrc_f1(prediction, g) for g in gold), default=0.0)
    if skipped:
        logger.warning("%d of %d questions have no prediction and score 0", skipped, len(examples))
    total = len(examples)
    return {
        "exact_match": 100.0 * em / total if total else 0.0,
        "f1": 100.0 * f1 / total if total else 0.0,
        "total": float(total),
        "skipped": float(skipped),
    }
