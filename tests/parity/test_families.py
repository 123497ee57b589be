"""Every family, every head: a tiny random `transformers` model -> bertforge gives equal outputs
(fp32, padding in the batch), and bertforge -> save_pretrained -> `transformers` AutoModel*
loads with no missing, unexpected or mismatched keys and gives them again. NEZHA, which
transformers 5 no longer ships, is checked against its fixture in test_nezha.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from tiny import HF_CONFIGS, batch, choice_batch, hf_model
from torch.testing import assert_close

from bertforge import (
    Encoder,
    MultipleChoice,
    PreTrainingModel,
    QuestionAnswering,
    SequenceClassifier,
    TokenClassifier,
)
from bertforge.architectures import PreTrainingOutput

LABELS = {"id2label": {0: "neg", 1: "neu", 2: "pos"}}


def per_token(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x[mask.bool()]  # real tokens only: nothing reads the padding positions


def hidden(out: Any, mask: torch.Tensor) -> list[torch.Tensor]:
    pooled = getattr(out, "pooler_output", None)
    return [per_token(out.last_hidden_state, mask), *([pooled] if pooled is not None else [])]


def pretraining(out: Any, mask: torch.Tensor) -> list[torch.Tensor]:
    """MLM, sentence-pair and replaced-token logits, whichever the model has."""
    if isinstance(out, PreTrainingOutput):
        mlm, pair, rtd = out.mlm_logits, out.nsp_logits, out.rtd_logits
    else:  # HF: prediction_logits + seq_relationship_logits (BERT) / sop_logits (ALBERT)
        mlm = getattr(out, "prediction_logits", None)
        pair = getattr(out, "seq_relationship_logits", getattr(out, "sop_logits", None))
        rtd = out.logits if mlm is None else None  # ELECTRA's discriminator
    parts = [per_token(mlm, mask)] if mlm is not None else []
    parts += [pair] if pair is not None else []
    return parts + ([per_token(rtd, mask)] if rtd is not None else [])


def masked_lm(out: Any, mask: torch.Tensor) -> list[torch.Tensor]:
    return [per_token(out.mlm_logits if isinstance(out, PreTrainingOutput) else out.logits, mask)]


def logits(out: Any, mask: torch.Tensor) -> list[torch.Tensor]:
    return [out if isinstance(out, torch.Tensor) else out.logits]


def token_logits(out: Any, mask: torch.Tensor) -> list[torch.Tensor]:
    return [per_token(out if isinstance(out, torch.Tensor) else out.logits, mask)]


def spans(out: Any, mask: torch.Tensor) -> list[torch.Tensor]:
    start, end = out if isinstance(out, tuple) else (out.start_logits, out.end_logits)
    return [per_token(start, mask), per_token(end, mask)]


# role -> (HF class suffix, Auto class, ours, our options, HF config extras, outputs, inputs)
Role = tuple[str, type, type, dict, dict, Callable, Callable]
ROLES: dict[str, Role] = {
    "model": ("Model", transformers.AutoModel, Encoder, {}, {}, hidden, batch),
    "pretraining": ("ForPreTraining", transformers.AutoModelForPreTraining, PreTrainingModel,
                    {}, {}, pretraining, batch),
    "masked_lm": ("ForMaskedLM", transformers.AutoModelForMaskedLM, PreTrainingModel,
                  {}, {}, masked_lm, batch),
    "sequence": ("ForSequenceClassification", transformers.AutoModelForSequenceClassification,
                 SequenceClassifier, {}, {**LABELS, "problem_type": "single_label_classification"},
                 logits, batch),
    "regression": ("ForSequenceClassification", transformers.AutoModelForSequenceClassification,
                   SequenceClassifier, {}, {"num_labels": 1, "problem_type": "regression"},
                   logits, batch),
    "token": ("ForTokenClassification", transformers.AutoModelForTokenClassification,
              TokenClassifier, {}, LABELS, token_logits, batch),
    "qa": ("ForQuestionAnswering", transformers.AutoModelForQuestionAnswering,
           QuestionAnswering, {}, {}, spans, batch),
    "choice": ("ForMultipleChoice", transformers.AutoModelForMultipleChoice, MultipleChoice,
               {}, {}, logits, choice_batch),
}  # fmt: skip
# transformers has no such class for these families.
MISSING = {(f, "pretraining") for f in ("roberta", "distilbert", "modernbert", "deberta-v2")}
CASES = [(f, r) for f in HF_CONFIGS for r in ROLES if (f, r) not in MISSING]
# Each family names its classification dropout its own way; it must round-trip too.
DROPOUT = {"albert": "classifier_dropout_prob", "distilbert": "seq_classif_dropout",
           "deberta-v2": "cls_dropout"}  # fmt: skip


def compare(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> None:
    assert len(ours) == len(theirs)
    for a, t in zip(ours, theirs, strict=True):
        assert_close(a, t, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("family", "role"), CASES, ids=[f"{f}-{r}" for f, r in CASES])
def test_loads_transformers_and_saves_what_it_loads(tmp_path: Path, family: str, role: str) -> None:
    suffix, auto, ours_cls, options, extra, outputs, make_batch = ROLES[role]
    dropout = DROPOUT.get(family, "classifier_dropout")
    if role == "sequence":
        extra = {**extra, dropout: 0.2}
    hf = hf_model(family, suffix, **extra)
    hf.save_pretrained(tmp_path / "hf")
    ours = ours_cls.from_pretrained(tmp_path / "hf", **options)
    assert ours.config.model_type == family
    b = make_batch(family)
    mask = b["attention_mask"]
    with torch.no_grad():
        want = outputs(hf(**b), mask)
        compare(outputs(ours(**b), mask), want)

    ours.save_pretrained(tmp_path / "ours")
    again, info = auto.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert type(again) is type(hf)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    for key in ("id2label", "problem_type", dropout):
        assert getattr(again.config, key, None) == getattr(hf.config, key, None), key
    with torch.no_grad():
        compare(outputs(again.eval()(**b), mask), want)
