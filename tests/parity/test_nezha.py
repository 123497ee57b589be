"""NEZHA against its oracle: tiny random models and outputs saved by transformers 4.57.6
(tests/fixtures/nezha, made by make_fixture.py there), since transformers 5 no longer ships
NEZHA. Loading gives the saved outputs (fp32, padded rows included); saving writes the same
layout again: the same tensor names and shapes, and a config.json with the same fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close

from bertforge import (
    DataError,
    Encoder,
    MultipleChoice,
    PreTrainingModel,
    QuestionAnswering,
    SequenceClassifier,
    TokenClassifier,
)
from bertforge.models.encoder import set_unpadded

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "nezha"


def bare(out: object) -> dict[str, torch.Tensor]:
    return {
        "last_hidden_state": out.last_hidden_state,
        "pooler_output": out.pooler_output,
        **{f"hidden_states.{i}": h for i, h in enumerate(out.hidden_states)},
        **{f"attentions.{i}": a for i, a in enumerate(out.attentions)},
    }


# fixture folder -> (our class, call options, our outputs under the HF names)
CASES = {
    "model": (Encoder, {"output_hidden_states": True, "output_attentions": True}, bare),
    "pretraining": (
        PreTrainingModel,
        {},
        lambda o: {"prediction_logits": o.mlm_logits, "seq_relationship_logits": o.nsp_logits},
    ),
    "masked_lm": (PreTrainingModel, {}, lambda o: {"logits": o.mlm_logits}),
    "sequence_classification": (SequenceClassifier, {}, lambda o: {"logits": o}),
    "token_classification": (TokenClassifier, {}, lambda o: {"logits": o}),
    "question_answering": (
        QuestionAnswering,
        {},
        lambda o: {"start_logits": o[0], "end_logits": o[1]},
    ),
    "multiple_choice": (MultipleChoice, {}, lambda o: {"logits": o}),
}


def run(model: torch.nn.Module, case: str, expected: dict[str, torch.Tensor]) -> dict:
    _, options, outputs = CASES[case]
    inputs = {k: expected[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        return outputs(model(**inputs, **options))


@pytest.mark.parametrize("case", list(CASES))
def test_matches_transformers_4(tmp_path: Path, case: str) -> None:
    directory = FIXTURE / case
    expected = load_file(directory / "expected.safetensors")
    model = CASES[case][0].from_pretrained(directory)
    assert model.config.position == "relative" and model.config.max_relative_position == 4
    got = run(model, case, expected)
    assert got.keys() == expected.keys() - {"input_ids", "attention_mask", "token_type_ids"}
    for key, value in got.items():
        assert_close(value, expected[key], atol=1e-5, rtol=1e-5, msg=key)

    model.save_pretrained(tmp_path)
    theirs, ours = (
        load_file(directory / "model.safetensors"),
        load_file(tmp_path / "model.safetensors"),
    )
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    config = json.loads((tmp_path / "config.json").read_text())
    reference = json.loads((directory / "config.json").read_text())
    for key in ("architectures", "model_type", "max_relative_position", "hidden_size", "id2label"):
        assert config.get(key) == reference.get(key), key
    again = run(CASES[case][0].from_pretrained(tmp_path), case, expected)
    for key, value in again.items():
        assert_close(value, got[key], msg=key)


def test_unpadded_relative_attention_equals_padded() -> None:
    expected = load_file(FIXTURE / "model" / "expected.safetensors")
    model = Encoder.from_pretrained(FIXTURE / "model")
    mask = expected["attention_mask"].bool()
    padded = run(model, "model", expected)["last_hidden_state"]
    set_unpadded(model)
    with torch.no_grad():
        unpadded = model(
            expected["input_ids"], expected["attention_mask"], expected["token_type_ids"]
        )
    assert_close(unpadded.last_hidden_state[mask], padded[mask], atol=1e-6, rtol=1e-5)


def test_longer_inputs_than_the_table_are_refused() -> None:
    model = Encoder.from_pretrained(FIXTURE / "model")
    with pytest.raises(DataError, match="64 positions"):
        model(torch.ones(1, 65, dtype=torch.long))
