"""Recipes, optimisers, schedule and checkpoints of the pretraining loop."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from bertforge import FAMILIES, CheckpointError, ConfigError, PreTrainingModel
from bertforge.pretraining.recipe import load_recipe, packaged_recipes
from bertforge.pretraining.recipe_tables import TrainConfig
from bertforge.training import checkpoint
from bertforge.training.optim import Lamb, build_optimizer, lr_schedule, param_groups

REPO = Path(__file__).resolve().parents[2]


CHINESE = {"bert-wwm-zh": "bert", "roberta-wwm-ext-zh": "bert", "ernie-zh": "bert",
           "nezha-zh": "nezha"}  # fmt: skip


@pytest.mark.parametrize("name", packaged_recipes())
def test_shipped_recipes_load(name: str) -> None:
    """Packaged recipe NAME-PRESET: NAME is the family, or a recipe of one (SpanBERT is a BERT,
    DeBERTa-v3 a deberta-v2); the Chinese recipes (NAME-zh) are base-sized, three of them BERTs."""
    recipe = load_recipe(name)
    if name == "continue-mlm":  # the checkpoint of --init gives the family and the size
        assert recipe.masking.mode == "token" and not recipe.objectives  # bert's, by default
        return
    if name in CHINESE:
        family, preset = CHINESE[name], "base"
    else:
        name, preset = name.removeprefix("deberta-").split("-", 1)
        family = {"spanbert": "bert", "v3": "deberta-v2"}.get(name, name)
    assert (recipe.family, recipe.preset) == (family, preset)
    assert recipe.train.batch_size % recipe.train.micro_batch_size == 0


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_names_a_shipped_recipe(name: str) -> None:
    recipe = FAMILIES[name].recipe
    if recipe is not None:
        assert load_recipe(recipe).family == name


def test_overrides_are_typed_and_round_trip(tmp_path: Path) -> None:
    recipe = load_recipe(
        "bert-mini",
        ["train.lr=2e-4", "train.max_steps=1e3", "train.optimizer=lamb", "masking.mode=span",
         "model.hidden_dropout_prob=0", "preset=tiny"],
    )  # fmt: skip
    assert recipe.train.lr == 2e-4 and recipe.train.max_steps == 1000
    assert recipe.train.optimizer == "lamb" and recipe.masking.mode == "span"
    assert recipe.model["hidden_dropout_prob"] == 0 and recipe.preset == "tiny"
    (tmp_path / "r.toml").write_text(recipe.to_toml())
    assert load_recipe(tmp_path / "r.toml") == recipe


@pytest.mark.parametrize(
    ("text", "sets", "message"),
    [
        ("[train]\nlrr = 1\n", [], r"unknown key\(s\) lrr"),
        ("[trian]\n", [], r"unknown key\(s\) trian"),
        ("preset = 'huge'\n", [], "unknown preset 'huge'"),
        ("", ["train.lr=fast"], "expected float"),
        ("", ["train.nope=1"], "unknown train key 'nope'"),
        ("", ["model.hidden_size=100", "model.num_attention_heads=3"], "not divisible"),
        ("", ["lr"], "expected key=value"),
        ("", ["train.batch_size=100"], "not a multiple of micro_batch_size"),
        ("[train\n", [], "not valid TOML"),
        ("", ["train.schedule=cosine"], "train.schedule='cosine'; choose one of linear, wsd"),
        ("", ["train.decay_fraction=0"], r"decay_fraction=0.0 must be in \(0, 1\]"),
    ],
)
def test_recipe_errors(tmp_path: Path, text: str, sets: list[str], message: str) -> None:
    (tmp_path / "r.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(tmp_path / "r.toml", sets)


def test_a_micro_batch_above_the_global_batch_shrinks() -> None:
    """`--batch-size 16` with a recipe's micro-batch of 32 trains 16 at once, not an error;
    under 2 ranks each takes 8 (the plan says so: tests/e2e/test_pretrain.py). The recipe
    itself keeps what it was given."""
    recipe = load_recipe(None, ["train.batch_size=16", "train.micro_batch_size=32"])
    assert recipe.train.micro_batch_size == 32
    assert recipe.train.micro_batch(1) == 16 and recipe.train.accumulation_per_rank(1) == 1
    assert recipe.train.micro_batch(2) == 8 and recipe.train.accumulation_per_rank(2) == 1
    assert TrainConfig(batch_size=64, micro_batch_size=32).micro_batch(1) == 32


def test_no_weight_decay_on_biases_and_layernorms() -> None:
    model = PreTrainingModel(FAMILIES["bert"].config("tiny", vocab_size=100))
    decay, no_decay = param_groups(model, 0.01)
    assert all(p.ndim >= 2 for p in decay["params"])
    assert all(p.ndim == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_optimisers_minimise_a_quadratic(name: str) -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 8)
    opt = build_optimizer(layer, name, lr=1e-2, weight_decay=0.0)
    x = torch.randn(64, 8)
    first = None
    for _ in range(300):
        loss = (layer(x) ** 2).mean()
        first = first if first is not None else float(loss.detach())
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert float(loss.detach()) < 0.1 * first
    assert isinstance(opt, Lamb) == (name == "lamb")


def test_linear_warmup_then_decay() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = lr_schedule(opt, warmup_steps=4, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lrs[-1] == pytest.approx(1 / 8) and lrs == sorted(lrs[:4]) + sorted(
        lrs[4:], reverse=True
    )


def test_warmup_stable_decay() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = lr_schedule(opt, warmup_steps=2, total_steps=12, kind="wsd", decay_steps=4)
    lrs = []
    for _ in range(13):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:8] == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # warmup, then the plateau
    # 1 - sqrt(progress) over the last 4 steps, 0 at the end.
    assert lrs[8:] == pytest.approx([1.0, 1 - 0.5, 1 - 0.5**0.5, 1 - 0.75**0.5, 0.0])


def _save(run: Path, step: int) -> Path:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = lr_schedule(opt, 1, 10)
    state = (model.state_dict(), opt.state_dict())
    return checkpoint.save_checkpoint(run, step, *state, sched, {"loader": {}}, keep_last=2)


def test_checkpoints_keep_last_and_skip_torn(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        _save(tmp_path, step)
    assert [p.name for p in sorted((tmp_path / "checkpoints").glob("step-*"))] == [
        "step-00000002",
        "step-00000003",
    ]
    (tmp_path / "checkpoints" / "step-00000003" / "trainer.json").write_text("{torn")
    assert checkpoint.latest_checkpoint(tmp_path).name == "step-00000002"


def test_truncated_and_corrupt_checkpoints_are_caught(tmp_path: Path) -> None:
    """Sizes are checked when picking the newest checkpoint (a truncated one is skipped),
    sha256 when loading (a changed byte fails with the file's name)."""
    for step in (1, 2):
        _save(tmp_path, step)
    newest = tmp_path / "checkpoints" / "step-00000002"
    state = (newest / "state.pt").read_bytes()
    (newest / "state.pt").write_bytes(state[:-10])
    assert checkpoint.latest_checkpoint(tmp_path).name == "step-00000001"
    (newest / "state.pt").write_bytes(state)
    weights = bytearray((newest / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF  # one bit pattern in the last float changes; the size does not
    (newest / "model.safetensors").write_bytes(bytes(weights))
    assert checkpoint.latest_checkpoint(tmp_path) == newest
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    with pytest.raises(CheckpointError, match=r"model\.safetensors' is corrupt: its sha256"):
        checkpoint.load_checkpoint(newest, lr_schedule(opt, 1, 10))


def test_disk_full_leaves_no_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path, 1)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    with pytest.raises(CheckpointError, match=r"No space left.*older checkpoints are intact"):
        _save(tmp_path, 2)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000001"]
    assert checkpoint.latest_checkpoint(tmp_path).name == "step-00000001"
