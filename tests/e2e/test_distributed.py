"""Data-parallel pretraining under torchrun: 2 CPU ranks (gloo) train exactly like 1 process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_pretrain import RECIPE, data_dir  # noqa: F401 (data_dir is a fixture)

from bertforge.errors import ConfigError
from bertforge.training.loop import pretrain
from bertforge.training.recipe import TrainConfig, load_recipe

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch build has no torch.distributed"
)

# Dropout off: two ranks cannot draw the dropout masks one process draws for the same batch.
DDP_RECIPE = [
    *RECIPE,
    "train.max_steps=6",
    "train.batch_size=8",
    "train.micro_batch_size=2",  # 2 ranks x 2 accumulation steps
    "train.save_every=100",
    "train.eval_every=100",
    "model.hidden_dropout_prob=0",
    "model.attention_probs_dropout_prob=0",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_records(run: Path) -> list[dict[str, float]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == "train"]


def assert_ranks_match_one_process(
    data: Path, tmp_path: Path, recipe: list[str], rel: float = 1e-4, atol: float = 1e-5
) -> None:
    """torchrun with 2 gloo ranks and one process train the same: the same logged losses and
    gradient norms at every step (to `rel`), and the same final weights (to `atol`)."""
    ddp_run, single_run = tmp_path / "ddp", tmp_path / "single"
    sets = [arg for item in recipe for arg in ("--set", item)]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-port", str(free_port()),
        "-m", "bertforge.cli.main", "--verbose", "pretrain", "--data", str(data),
        "--output", str(ddp_run), *sets,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=repo, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "rank 1 of 2" in result.stderr  # really data-parallel, not two lone processes

    pretrain(load_recipe(None, recipe), data, single_run)

    ddp, single = train_records(ddp_run), train_records(single_run)
    assert [r["step"] for r in ddp] == [r["step"] for r in single] == list(range(1, 7))
    # grad_norm too: Adam barely notices a wrongly scaled gradient, the norm does.
    keys = ["loss", "grad_norm", *(k for k in single[0] if k.endswith(("_loss", "_acc")))]
    for a, b in zip(ddp, single, strict=True):
        for key in keys:
            assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-6), (a["step"], key)
    final = "checkpoints/step-00000006/model.safetensors"
    a, b = load_file(ddp_run / final), load_file(single_run / final)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)
    assert (ddp_run / "hf").is_dir() and not list(ddp_run.glob("checkpoints/.tmp-*"))


def test_two_ranks_match_one_process(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    assert_ranks_match_one_process(data_dir, tmp_path, DDP_RECIPE)


@pytest.fixture(scope="module")
def teacher(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """A 4-layer MLM without dropout (its students inherit its config)."""
    run = tmp_path_factory.mktemp("teacher") / "run"
    recipe = [*DDP_RECIPE, "train.max_steps=4", "model.num_hidden_layers=4", "objectives.mlm=1"]
    return pretrain(load_recipe(None, recipe), data_dir, run)


# ELECTRA samples with the collator's per-example draws, so two ranks replace the tokens one
# process replaces; SpanBERT's head and the student's teacher must split the same way.
OBJECTIVES = {
    "electra": ["family=electra", "objectives.mlm=1", "objectives.rtd=50"],
    "spanbert": ["masking.mode=span", "objectives.mlm=1", "objectives.sbo=1"],
    "distill": ["objectives.distill_ce=5", "objectives.mlm=2", "objectives.distill_cos=1"],
}
# Except that ELECTRA's inverse-CDF sampling is discontinuous: a boundary of the cumulative
# probabilities that moves by the ~1e-8 of a different summation order (an all-reduce against
# local accumulation) can change which token is sampled, about 3e-4 of the time per masked
# token (the sum of those moves over a 30k vocabulary). One different token moves the losses
# by ~1e-4; the embedding row it reads gets an Adam step (lr = 1e-3) in one run only, and
# Adam's normalisation spreads ~1e-4 to other weights. A wrongly scaled or split batch moves
# the losses by far more.
TOLERANCE = {"electra": {"rel": 2e-3, "atol": 3e-3}}


@pytest.mark.parametrize("name", OBJECTIVES)
def test_every_objective_trains_the_same_on_two_ranks(
    name: str,
    data_dir: Path,  # noqa: F811
    teacher: Path,
    tmp_path: Path,
) -> None:
    extra = [f"distill.teacher={teacher}"] if name == "distill" else []
    recipe = [*DDP_RECIPE, *OBJECTIVES[name], *extra]
    assert_ranks_match_one_process(data_dir, tmp_path, recipe, **TOLERANCE.get(name, {}))


def test_global_batch_must_split_evenly_over_ranks() -> None:
    cfg = TrainConfig(batch_size=8, micro_batch_size=2)
    assert (cfg.accumulation_per_rank(1), cfg.accumulation_per_rank(2)) == (4, 2)
    with pytest.raises(ConfigError, match="not divisible by micro_batch_size=2 x 3 ranks"):
        cfg.accumulation_per_rank(3)
