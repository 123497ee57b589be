"""Pretraining end to end on a small corpus: exact resume, export, metrics and plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from bertforge import pretrain
from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.collate import PretrainingCollator
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer

RECIPE = [
    "preset=tiny",
    "train.max_steps=60",
    "train.batch_size=8",
    "train.micro_batch_size=4",  # two accumulation steps
    "train.lr=1e-3",
    "train.warmup_steps=10",
    "train.save_every=20",
    "train.eval_every=20",
    "train.eval_batches=2",
    "train.log_every=1",
    "train.precision=fp32",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    from pydoc_data.topics import topics

    root = tmp_path_factory.mktemp("pretrain")
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(list(topics.values())[:40]), encoding="utf-8")
    tok = Tokenizer.from_pretrained(minilm_path)
    out = root / "data"
    build_data(tok, [corpus], out, BuildConfig(max_seq_len=64, eval_fraction=0.1), workers=0)
    return out


def losses(run: Path) -> list[tuple[int, float, float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["mlm_loss"]) for r in records if r["split"] == "train"]


def test_resume_is_exact(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = load_recipe(None, RECIPE)
    straight = tmp_path / "straight"
    exported = pretrain(data_dir, straight, recipe).model

    split = tmp_path / "split"
    assert pretrain(data_dir, split, recipe, stop_at=30).model is None
    calls = []
    original = PretrainingCollator.__call__
    monkeypatch.setattr(
        PretrainingCollator, "__call__", lambda self, s: calls.append(len(s)) or original(self, s)
    )
    pretrain(data_dir, split, recipe, resume=True)

    assert losses(split) == losses(straight)  # exact, float for float
    assert [s for s, _, _ in losses(split)] == list(range(1, 61))
    a = load_file(straight / "checkpoints" / "step-00000060" / "model.safetensors")
    b = load_file(split / "checkpoints" / "step-00000060" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # No replay: after resuming, only the 30 remaining steps' micro-batches (+ the fixed eval
    # sample) were collated, not the 30 steps before the checkpoint.
    eval_micro = 2
    assert len(calls) == 30 * 2 + eval_micro

    # The run exported an HF BertForPreTraining that transformers loads with no missing keys.
    _, info = transformers.BertForPreTraining.from_pretrained(exported, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert (straight / "loss.png").stat().st_size > 10_000
    evals = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evals if r["split"] == "eval"] == [20, 40, 60]
    first, last = losses(straight)[0][1], losses(straight)[-1][1]
    assert last < first  # it learns


def test_short_sequences_first_then_the_data_and_resume_across_the_switch(
    data_dir: Path, minilm_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = Tokenizer.from_pretrained(minilm_path)
    packed = tmp_path / "packed"
    cfg = BuildConfig(objective="full-sentences", max_seq_len=64, eval_fraction=0.1)
    build_data(tok, [data_dir.parent / "corpus.txt"], packed, cfg, workers=0)
    sets = [*RECIPE, "train.max_steps=20", "train.short_seq_len=16",
            "train.short_seq_fraction=0.5", "objectives.mlm=1"]  # fmt: skip
    recipe = load_recipe(None, sets)
    widths: list[tuple[int, int]] = []  # (rows, longest) of each collated micro-batch
    original = PretrainingCollator.__call__
    monkeypatch.setattr(
        PretrainingCollator,
        "__call__",
        lambda self, s: (
            widths.append((len(s), max(len(x.instance.tokens) for x in s))) or original(self, s)
        ),
    )
    straight = pretrain(packed, tmp_path / "straight", recipe).model
    eval_micro = 2
    train = widths[eval_micro:]
    # Steps 1-10 (two micro-batches each): pieces of <= 16 tokens, as many times the rows per
    # micro-batch as the data's sequences make pieces on average (4 here); then the data.
    assert {rows for rows, _ in train[:20]} == {4 * 4}
    assert all(longest <= 16 for _, longest in train[:20])
    assert all(rows == 4 and longest > 16 for rows, longest in train[20:])
    split = tmp_path / "split"
    for stop in (7, 13):
        assert pretrain(packed, split, recipe, resume=stop == 13, stop_at=stop).model is None
    pretrain(packed, split, recipe, resume=True)
    assert straight is not None and losses(split) == losses(tmp_path / "straight")


def test_the_plan_says_how_the_batch_splits_and_warns_of_a_long_warmup(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bertforge.pretraining import plan_pretraining

    sets = [*RECIPE, "train.batch_size=16", "train.micro_batch_size=32", "train.warmup_steps=60"]
    plan = plan_pretraining(load_recipe(None, sets), data_dir, world_size=2)
    assert (plan.micro_batch_size, plan.accumulation) == (8, 1)
    assert "using micro-batches of 8" in caplog.text
    # Warmup as long as the run: the learning rate never peaks, which the plan says.
    assert "never reaches its peak" in caplog.text and "peak lr 0.001 after 60" in caplog.text
    # BERT on sentence pairs: the family default, MLM + NSP, and the heads they read.
    assert [o.name for o in plan.objectives] == ["mlm", "nsp"] and plan.heads == {"mlm", "nsp"}


def test_existing_run_needs_resume(data_dir: Path, tmp_path: Path) -> None:
    from bertforge.errors import ConfigError

    recipe = load_recipe(None, [*RECIPE, "train.max_steps=2", "train.save_every=1"])
    pretrain(data_dir, tmp_path / "run", recipe)
    with pytest.raises(ConfigError, match="pass --resume"):
        pretrain(data_dir, tmp_path / "run", recipe)


def test_non_finite_steps_abort_and_keep_the_last_good_checkpoint(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bertforge.training import trainer

    real = trainer.train_step
    calls = {"n": 0}

    def exploding(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        stats, norm = real(*args, **kwargs)
        return stats, (float("nan") if calls["n"] > 3 else norm)

    monkeypatch.setattr(trainer, "train_step", exploding)
    recipe = load_recipe(None, [*RECIPE, "train.save_every=2", "train.max_bad_steps=3"])
    with pytest.raises(trainer.TrainingAborted, match="3 non-finite steps in a row at step 4"):
        pretrain(data_dir, tmp_path / "run", recipe)
    from bertforge.training.checkpoint import latest_checkpoint

    assert latest_checkpoint(tmp_path / "run").name == "step-00000002"


def test_data_built_with_another_tokenizer_is_refused(data_dir: Path, tmp_path: Path) -> None:
    import shutil

    from bertforge.errors import DataError
    from bertforge.tokenization import train_tokenizer

    other = tmp_path / "data"
    shutil.copytree(data_dir, other)
    corpus = tmp_path / "c.txt"
    corpus.write_text("some words for a different vocabulary\n" * 50)
    train_tokenizer([corpus], "wordpiece", 200).save_pretrained(other / "tokenizer")
    with pytest.raises(DataError, match="different tokenizer"):
        pretrain(other, tmp_path / "run", load_recipe(None, RECIPE))


def test_tensorboard_events_beside_the_metrics_and_a_resume_rewrites_them(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that dies after logging step 3 with its checkpoint at step 2: the resume drops
    the events past step 2 and logs steps 3-6 again, so each step is there once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bertforge.training import trainer

    run = tmp_path / "run"
    sets = [*RECIPE, "train.max_steps=6", "train.eval_every=3", "train.save_every=2"]
    recipe = load_recipe(None, sets)
    real, calls = trainer.train_step, {"n": 0}

    def dies_at_step_4(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", dies_at_step_4)
    with pytest.raises(RuntimeError, match="power cut"):
        pretrain(data_dir, run, recipe, report_to=["tensorboard"])
    monkeypatch.setattr(trainer, "train_step", real)
    pretrain(data_dir, run, recipe, resume=True, report_to=["tensorboard"])
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 7))
    assert [e.step for e in events.Scalars("eval/mlm_acc")] == [3, 6]
    records = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    logged = [r["loss"] for r in records if r["split"] == "train"]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(logged)
