"""The ModernBERT recipe end to end on a tiny model: documents packed into full-sentences rows
that attend only to themselves, a warmup-stable-decay schedule, 30% masking; the loss falls,
a run killed by SIGKILL resumes to the very weights of one that never stopped, and the export
is a `ModernBertForMaskedLM` that transformers loads and fills masks with, and that fine-tunes
on (tiny) CoNLL NER and SQuAD."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file
from test_crash import run_cli
from test_families_finetune import data

from bertforge import ConfigError, PretrainResult, finetune, pretrain
from bertforge.data.builder import BuildConfig, build_data
from bertforge.tokenization import train_tokenizer

# 30 steps of 8 sequences, a checkpoint every 10 (the test of another recipe reuses them).
RUN = [
    "train.max_steps=30",
    "train.batch_size=8",
    "train.micro_batch_size=4",
    "train.lr=2e-3",
    "train.warmup_steps=5",
    "train.save_every=10",
    "train.eval_every=10",
    "train.eval_batches=1",
    "train.log_every=1",
    "train.precision=fp32",
]
TINY = ["preset=tiny", "model.max_position_embeddings=128", "model.local_attention=16", *RUN]
KILL_AFTER_STEP_20 = """
from bertforge.training import trainer
real_save = trainer.save_checkpoint
def save_checkpoint(run_dir, step, *args, **kwargs):
    path = real_save(run_dir, step, *args, **kwargs)
    if step == 20:
        die()
    return path
trainer.save_checkpoint = save_checkpoint
"""


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> dict[str, Path]:
    """Short documents (2-4 lines) packed several to a 128-token row, and pair shards."""
    root = tmp_path_factory.mktemp("modernbert")
    docs = ["\n".join(doc_lines[i : i + 2 + i % 3]) for i in range(0, 3000, 4)]
    corpus = root / "docs.txt"
    corpus.write_text("\n\n".join(docs), encoding="utf-8")
    tok = train_tokenizer([corpus], "bpe", 800)
    out = {}
    for objective in ("full-sentences", "nsp"):
        cfg = BuildConfig(objective=objective, max_seq_len=128, eval_fraction=0.05)
        build_data(tok, [corpus], root / objective, cfg, workers=0)
        out[objective] = root / objective
    return out


def train_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return [r["loss"] for r in records if r["split"] == "train"]


def test_recipe_trains_packed_documents_and_exports_a_fill_mask_model(
    shards: dict[str, Path], tmp_path: Path
) -> None:
    result = pretrain(shards["full-sentences"], tmp_path / "run", "modernbert-mini", overrides=TINY)
    recorded = (tmp_path / "run" / "recipe.toml").read_text()
    assert 'documents = "separate"' in recorded and 'schedule = "wsd"' in recorded
    losses = train_losses(tmp_path / "run")
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5]), losses
    model, info = transformers.AutoModelForMaskedLM.from_pretrained(
        result.model, output_loading_info=True
    )
    assert type(model).__name__ == "ModernBertForMaskedLM"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    fill = transformers.pipeline("fill-mask", model=str(result.model))
    mask = fill.tokenizer.mask_token
    guesses = fill(f"The function returns a {mask} of the values.")
    assert len(guesses) == 5 and all(g["token_str"] for g in guesses)
    fine_tunes_on_ner_and_squad(result.model, tmp_path / "finetune")


def fine_tunes_on_ner_and_squad(model: Path, root: Path) -> None:
    """`finetune ner` and `finetune squad` (tiny CoNLL and SQuAD files) from a pretrained
    export; each best/ opens in transformers with every weight."""
    for command, auto, metric in (("ner", "AutoModelForTokenClassification", "entity_f1"),
                                  ("squad", "AutoModelForQuestionAnswering", "f1")):  # fmt: skip
        options = data(root / command, command)
        result = finetune(command, model, root / command, root / f"{command}-run", epochs=1,
                          batch_size=8, lr=1e-3, **options)  # fmt: skip
        assert metric in result.metrics, result.metrics
        _, info = getattr(transformers, auto).from_pretrained(
            root / f"{command}-run" / "best", output_loading_info=True
        )
        assert not info["missing_keys"] and not info["unexpected_keys"], info


def straight_and_resumed(
    data: Path, tmp_path: Path, recipe: str, sets: list[str]
) -> tuple[PretrainResult, PretrainResult]:
    """A run straight through, and the same run SIGKILLed after its step-20 checkpoint and
    resumed: the resumed run logs the straight run's last 10 losses."""
    straight = pretrain(data, tmp_path / "straight", recipe, overrides=sets)
    flags = [arg for item in sets for arg in ("--set", item)]
    args = ["pretrain", "--data", data, "--output", tmp_path / "killed", "--config", recipe,
            *flags]  # fmt: skip
    killed = run_cli(KILL_AFTER_STEP_20, args)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = pretrain(data, tmp_path / "killed", resume=True)
    assert train_losses(tmp_path / "killed")[-10:] == train_losses(tmp_path / "straight")[-10:]
    return straight, resumed


def test_a_killed_run_resumes_to_the_same_weights(shards: dict[str, Path], tmp_path: Path) -> None:
    data = shards["full-sentences"]
    straight, resumed = straight_and_resumed(data, tmp_path, "modernbert-mini", TINY)
    assert resumed.step == 30
    a = load_file(straight.model / "model.safetensors")
    b = load_file(resumed.model / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_separate_documents_need_packed_shards(shards: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='documents = "separate" needs full-sentences shards'):
        pretrain(shards["nsp"], tmp_path / "run", "modernbert-mini", overrides=TINY)
