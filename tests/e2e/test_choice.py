"""Multiple choice (SWAG format), the task added through the registry alone: every family's
`best/` opens in transformers' AutoModelForMultipleChoice with our logits, a real checkpoint
learns to pick the ending its context supports, and predict reads the training format."""

from __future__ import annotations

import csv
import inspect
import random
from pathlib import Path

import pytest
import torch
import transformers
from tiny import save_mlm_checkpoint

from bertforge import (
    FAMILIES,
    ConfigError,
    DataError,
    evaluate,
    finetune,
    predict,
)
from bertforge.finetuning import load_run
from bertforge.tokenization import train_tokenizer

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
CITIES = ["paris", "london", "tokyo", "lima", "oslo", "cairo", "rome", "dublin"]
HEADER = ["video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source",
          "ending0", "ending1", "ending2", "ending3", "label"]  # fmt: skip


def swag(path: Path, n: int, seed: int) -> Path:
    """SWAG's CSV layout: the context says where someone lives; one ending names that city."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(n):
            name, city = rng.choice(NAMES), rng.choice(CITIES)
            others = rng.sample([c for c in CITIES if c != city], 3)
            label = rng.randrange(4)
            endings = [*others[:label], city, *others[label:]]
            context = f"{name} was born and lives in {city}."
            writer.writerow([f"v{i}", i, "", context, f"{name} lives in", "gold", *endings, label])
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> dict:
    """A tiny random MLM checkpoint of each family, with a tokenizer of its kind."""
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    corpus.write_text("\n".join(doc_lines[::5] + [" ".join(NAMES + CITIES)] * 5), "utf-8")
    return {
        name: save_mlm_checkpoint(
            name,
            train_tokenizer([corpus], fam.tokenizer, 600, min_frequency=1),
            tmp_path_factory.mktemp(name),
        )
        for name, fam in FAMILIES.items()
    }


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_best_opens_in_transformers_multiple_choice(
    family: str, checkpoints: dict, tmp_path: Path
) -> None:
    swag(tmp_path / "train.csv", 16, 0)
    swag(tmp_path / "val.csv", 8, 1)
    run = tmp_path / "run"
    result = finetune("choice", checkpoints[family], tmp_path, run, epochs=1, batch_size=4,
                      lr=1e-3)  # fmt: skip
    assert set(result.metrics) == {"accuracy", "precision"}
    best = load_run(run)
    batch = best.tokenizer(["bob was born and lives in oslo."] * 3, ["oslo", "rome", "x y z"],
                           padding=True, return_tensors="pt")  # fmt: skip
    batch = {k: v.unsqueeze(0) for k, v in batch.items()}  # (1, 3 choices, T)
    with torch.no_grad():
        ours = best.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    if family == "nezha":  # transformers 5 has no NEZHA: a second load must agree
        again = load_run(run).model
        with torch.no_grad():
            same = again(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        torch.testing.assert_close(same, ours)
        return
    theirs = transformers.AutoModelForMultipleChoice.from_pretrained(run / "best").eval()
    takes = inspect.signature(theirs.forward).parameters
    with torch.no_grad():
        logits = theirs(**{k: v for k, v in batch.items() if k in takes}).logits
    assert ours.shape == logits.shape == (1, 3)
    torch.testing.assert_close(ours, logits, atol=1e-4, rtol=1e-4)


def test_a_real_checkpoint_learns_to_choose(minilm_path: Path, tmp_path: Path) -> None:
    swag(tmp_path / "train.csv", 64, 0)
    swag(tmp_path / "val.csv", 32, 1)
    run = tmp_path / "run"
    result = finetune("swag", minilm_path, tmp_path, run, epochs=2, batch_size=8, lr=5e-5)
    # Chance is 0.25; the ending is the city the context names.
    assert result.metrics["accuracy"] >= 0.6, result.metrics
    assert evaluate(run).metrics == pytest.approx(result.metrics)
    records = predict(run, tmp_path / "val.csv").records  # the training format, labels ignored
    assert len(records) == 32 and all(0 <= r["label"] < 4 and len(r["scores"]) == 4
                                      for r in records)  # fmt: skip
    (record,) = predict(run, [{"context": "grace was born and lives in rome.",
                               "start": "grace lives in",
                               "endings": ["tokyo", "rome", "lima", "oslo"]}]).records  # fmt: skip
    assert record["ending"] == ["tokyo", "rome", "lima", "oslo"][record["label"]]


def test_bad_files_and_no_onnx_graph(minilm_path: Path, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("sent1,sent2,ending0,label\nctx,,a,0\n", "utf-8")
    (tmp_path / "val.csv").write_text("sent1,sent2,ending0,label\nctx,,a,0\n", "utf-8")
    with pytest.raises(DataError, match="expected columns ending0, ending1"):
        finetune("choice", minilm_path, tmp_path, tmp_path / "run")
    swag(tmp_path / "train.csv", 4, 0)
    header, *rows = (tmp_path / "train.csv").read_text().splitlines()
    bad = [header, *(row.rsplit(",", 1)[0] + ",7" for row in rows)]
    (tmp_path / "val.csv").write_text("\n".join(bad) + "\n", "utf-8")
    with pytest.raises(DataError, match="label '7' is not an ending's index"):
        finetune("choice", minilm_path, tmp_path, tmp_path / "run")
    from bertforge.onnx_export import export_onnx

    with pytest.raises(ConfigError, match="--task 'choice'"):
        export_onnx(minilm_path, "choice", tmp_path / "m.onnx")
