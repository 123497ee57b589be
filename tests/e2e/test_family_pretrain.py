"""Pretraining runs for the other families through the same loop and recipe: a tokenizer of
the family's kind, shards of the objective it trains on, a few steps, and an export that
transformers opens with equal MLM logits (NEZHA: that bertforge reopens)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

from bertforge import PreTrainingModel, pretrain
from bertforge.data.builder import BuildConfig, build_data
from bertforge.errors import ConfigError
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer, train_tokenizer

STEPS = [
    "preset=tiny",
    "model.max_position_embeddings=64",
    "train.max_steps=4",
    "train.batch_size=8",
    "train.micro_batch_size=4",
    "train.warmup_steps=1",
    "train.eval_every=2",
    "train.eval_batches=1",
    "train.log_every=1",
    "train.precision=fp32",
]
# family -> (tokenizer kind, shard objective, transformers class of the export)
CASES = {
    "roberta": ("bpe", "full-sentences", "RobertaForMaskedLM"),
    "albert": ("unigram", "sop", "AlbertForPreTraining"),
    "distilbert": ("wordpiece", "full-sentences", "DistilBertForMaskedLM"),
    "nezha": ("wordpiece", "nsp", None),
}


def shards(root: Path, corpus: Path, kind: str, objective: str) -> Path:
    tok = train_tokenizer([corpus], kind, 600)
    out = root / "data"
    build_data(tok, [corpus], out, BuildConfig(objective=objective, max_seq_len=48,
                                               eval_fraction=0.1), workers=0)  # fmt: skip
    return out


@pytest.mark.parametrize("family", list(CASES))
def test_pretrains_and_exports(tmp_path: Path, corpus: Path, family: str) -> None:
    kind, objective, hf_class = CASES[family]
    data = shards(tmp_path, corpus, kind, objective)
    exported = pretrain(
        data, tmp_path / "run", load_recipe(None, [f"family={family}", *STEPS])
    ).model
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    train = [r for r in records if r["split"] == "train"]
    assert len(train) == 4 and all(torch.isfinite(torch.tensor(r["mlm_loss"])) for r in train)
    assert ("nsp_loss" in train[-1]) == (objective == "sop" or family == "nezha")
    assert any(r["split"] == "eval" for r in records)
    ours = PreTrainingModel.from_pretrained(exported)
    assert ours.config.model_type == family
    ids = Tokenizer.from_pretrained(exported)(["a short test", "of the export"], padding=True,
                                             return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        mine = ours(ids["input_ids"], ids["attention_mask"]).mlm_logits
    if hf_class is None:
        return
    theirs = transformers.AutoModelForPreTraining.from_pretrained(exported) if hf_class.endswith(
        "PreTraining") else transformers.AutoModelForMaskedLM.from_pretrained(exported)  # fmt: skip
    assert type(theirs).__name__ == hf_class
    with torch.no_grad():
        out = theirs.eval()(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"])
    logits = getattr(out, "prediction_logits", None)
    logits = out.logits if logits is None else logits
    keep = ids["attention_mask"].bool()
    torch.testing.assert_close(mine[keep], logits[keep], atol=1e-4, rtol=1e-4)


def test_a_pair_objective_needs_pair_data(tmp_path: Path, corpus: Path) -> None:
    data = shards(tmp_path, corpus, "bpe", "full-sentences")
    recipe = load_recipe(None, ["family=roberta", "objectives.nsp=1", *STEPS])
    with pytest.raises(ConfigError, match="nsp needs sentence-pair shards"):
        pretrain(data, tmp_path / "run", recipe)
