"""The official SQuAD evaluation: exact match and token F1 on a 0–100 scale.

Normalisation and scoring follow the official `evaluate-v1.1.py` (and `evaluate-v2.0.py` for
unanswerable questions). Each question scores the maximum over its gold answers.
"""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

from bertforge.tasks.formats.squad_json import SquadExample

logger = logging.getLogger(__name__)

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop ASCII punctuation and the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str, *, version_2: bool = False) -> float:
    """Bag-of-tokens F1 of the normalised strings, in [0, 1].

    v1.1 scores 0 when either side normalises to nothing; v2.0 scores two empty answers as 1
    (a correct "no answer").
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if version_2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _gold(example: SquadExample, version_2: bool) -> list[str]:
    texts = [a.text for a in example.answers]
    if version_2:
        # evaluate-v2.0.py ignores gold answers that normalise to nothing; none left = "no answer".
        texts = [t for t in texts if normalize_answer(t)] or [""]
    return texts


def _mean(scores: Sequence[float]) -> float:
    return 100.0 * sum(scores) / len(scores) if scores else 0.0


def squad_evaluate(
    examples: Sequence[SquadExample],
    predictions: Mapping[str, str],
    version_2: bool | None = None,
) -> dict[str, float]:
    """`exact_match` and `f1` in 0–100 over all questions; a question without a prediction
    scores 0 (as in v1.1). `version_2` (default: any question is unanswerable) adds
    `HasAns_*`/`NoAns_*` breakdowns and counts."""
    if version_2 is None:
        version_2 = any(e.is_impossible for e in examples)
    missing = [e.id for e in examples if e.id not in predictions]
    if missing:
        logger.warning(
            "%d of %d questions have no prediction and score 0 (first: %s)",
            len(missing),
            len(examples),
            missing[0],
        )
    em: dict[str, list[float]] = {"all": [], "HasAns": [], "NoAns": []}
    f1: dict[str, list[float]] = {"all": [], "HasAns": [], "NoAns": []}
    for example in examples:
        gold = _gold(example, version_2)
        prediction = predictions.get(example.id)
        if prediction is None:
            scores = (0.0, 0.0)
        else:
            scores = (
                max(exact_match(prediction, g) for g in gold),
                max(token_f1(prediction, g, version_2=version_2) for g in gold),
            )
        # Grouped on the raw answers, as evaluate-v2.0.py does.
        group = "HasAns" if example.answers else "NoAns"
        for name in ("all", group):
            em[name].append(scores[0])
            f1[name].append(scores[1])
    result = {"exact_match": _mean(em["all"]), "f1": _mean(f1["all"])}
    result["total"] = float(len(examples))
    if version_2:
        for group in ("HasAns", "NoAns"):
            result[f"{group}_exact_match"] = _mean(em[group])
            result[f"{group}_f1"] = _mean(f1[group])
            result[f"{group}_total"] = float(len(em[group]))
    return result
