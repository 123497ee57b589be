"""Data-parallel pretraining under torchrun: 2 CPU ranks (gloo) train exactly like 1 process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_pretrain import RECIPE, data_dir  # noqa: F401 (data_dir is a fixture)

from bertforge import pretrain
from bertforge.errors import ConfigError
from bertforge.pretraining.recipe import load_recipe
from bertforge.pretraining.recipe_tables import TrainConfig

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


def run_two_ranks(
    launcher: list[str], data: Path, run: Path, recipe: list[str], options: tuple[str, ...] = ()
) -> str:
    """`launcher ... pretrain ... options` with 2 ranks of one thread each; checks they really
    ran as a data-parallel group, not as two lone processes."""
    sets = [arg for item in recipe for arg in ("--set", item)]
    cmd = [*launcher, "--verbose", "pretrain", "--data", str(data), "--output", str(run), *sets]
    cmd += options
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=repo, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "rank 1 of 2" in result.stderr
    return result.stderr


def assert_ranks_match_one_process(
    data: Path, tmp_path: Path, recipe: list[str], rel: float = 1e-4, atol: float = 1e-5
) -> None:
    """torchrun with 2 gloo ranks and one process train the same: the same logged losses and
    gradient norms at every step (to `rel`), and the same final weights (to `atol`)."""
    ddp_run, single_run = tmp_path / "ddp", tmp_path / "single"
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-port", str(free_port()), "-m", "bertforge",
    ]  # fmt: skip
    log = run_two_ranks(torchrun, data, ddp_run, recipe)
    sharded = "FSDP2: parameters, gradients and optimizer state split over 2 ranks" in log
    assert sharded == ("train.parallel=fsdp" in recipe)
    pretrain(data, single_run, load_recipe(None, recipe))

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
    return pretrain(data_dir, run, load_recipe(None, recipe)).model


# ELECTRA samples with the collator's per-example draws, so two ranks replace the tokens one
# process replaces; SpanBERT's head and the student's teacher must split the same way.
OBJECTIVES = {
    "electra": ["family=electra", "objectives.mlm=1", "objectives.rtd=50"],
    "spanbert": ["masking.mode=span", "objectives.mlm=1", "objectives.sbo=1"],
    "distill": ["objectives.distill_ce=5", "objectives.mlm=2", "objectives.distill_cos=1"],
    "init": ["objectives.mlm=1"],  # continued pretraining of the teacher (`--init`)
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
    extra = {"distill": [f"distill.teacher={teacher}"], "init": [f"init.model={teacher}"]}
    recipe = [*DDP_RECIPE, *OBJECTIVES[name], *extra.get(name, [])]
    assert_ranks_match_one_process(data_dir, tmp_path, recipe, **TOLERANCE.get(name, {}))


def test_global_batch_must_split_evenly_over_ranks() -> None:
    cfg = TrainConfig(batch_size=8, micro_batch_size=2)
    assert (cfg.accumulation_per_rank(1), cfg.accumulation_per_rank(2)) == (4, 2)
    with pytest.raises(ConfigError, match="not divisible by micro_batch_size=2 x 3 ranks"):
        cfg.accumulation_per_rank(3)


def test_batch_16_on_two_ranks_gives_the_loss_trajectory_of_one(
    data_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The command line as a user runs it: `--batch-size 16` (global: 8 per rank, two
    micro-batches of 4) on 2 ranks and on 1, `--dropout 0`, 20 steps: the same losses."""
    flags = ("--batch-size", "16", "--dropout", "0", "--max-steps", "20", "--seed", "0")
    recipe = [r for r in RECIPE if not r.startswith(("train.max_steps", "train.batch_size"))]
    recipe += ["train.save_every=100", "train.eval_every=100"]
    two, one = tmp_path / "two", tmp_path / "one"
    launcher = [sys.executable, "-m", "bertforge"]
    run_two_ranks(launcher, data_dir, two, recipe, ("--nproc", "2", *flags))
    sets = [arg for item in recipe for arg in ("--set", item)]
    cmd = [*launcher, "pretrain", "--data", str(data_dir), "--output", str(one), *sets, *flags]
    result = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks, single = train_records(two), train_records(one)
    assert [r["step"] for r in ranks] == [r["step"] for r in single] == list(range(1, 21))
    for a, b in zip(ranks, single, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5, rel=0), a["step"]


def test_fsdp_two_ranks_match_one_process(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    """FSDP2 on gloo: parameters, gradients and Adam state sharded over 2 ranks train as one
    process does, and the checkpoint (gathered to rank 0) holds the same weights."""
    assert_ranks_match_one_process(data_dir, tmp_path, [*DDP_RECIPE, "train.parallel=fsdp"])


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_nproc_runs_torchrun_and_its_checkpoint_resumes(
    parallel: str,
    data_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`python -m bertforge pretrain --nproc 2` trains on 2 ranks; its step-3 checkpoint then
    resumes (DDP: in one process; FSDP: split over 2 ranks again) and trains steps 4-6 as the
    first run did."""
    run = tmp_path / "run"
    recipe = [*DDP_RECIPE, "train.save_every=3", f"train.parallel={parallel}"]
    launcher = [sys.executable, "-m", "bertforge"]
    run_two_ranks(launcher, data_dir, run, recipe, ("--nproc", "2"))
    two_ranks = train_records(run)
    shutil.rmtree(run / "checkpoints" / "step-00000006")
    shutil.rmtree(run / "hf")
    if parallel == "ddp":
        pretrain(data_dir, run, load_recipe(None, recipe), resume=True)
    else:
        run_two_ranks(launcher, data_dir, run, recipe, ("--nproc", "2", "--resume"))
    resumed = train_records(run)
    assert [r["step"] for r in resumed] == list(range(1, 7))
    for a, b in zip(two_ranks[3:], resumed[3:], strict=True):
        for key in ("loss", "grad_norm", "mlm_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["step"], key)


def on_two_ranks_and_one(args: list[str], tmp_path: Path) -> tuple[Path, Path]:
    """`bertforge ARGS --output DIR` under `--nproc 2` and in one process, one thread per
    process: the two run directories."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two, one = tmp_path / "two", tmp_path / "one"
    cmd = [sys.executable, "-m", "bertforge", "--verbose", *args, "--output"]
    result = subprocess.run(
        [*cmd, str(two), "--nproc", "2"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "rank 1 of 2" in result.stderr
    result = subprocess.run([*cmd, str(one)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return two, one


def assert_same_records(two: Path, one: Path, atol: float) -> list[dict]:
    """The train and dev records of both runs agree at every step (timing aside); returns the
    one-process run's."""

    def records(run: Path) -> list[dict]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["split"] in ("train", "dev")]

    ranks, single = records(two), records(one)
    assert [(r["split"], r["step"]) for r in ranks] == [(r["split"], r["step"]) for r in single]
    skip = {"split", "step", "epoch", "lr", "precision", "tokens_per_s", "steps_per_s"}
    for a, b in zip(ranks, single, strict=True):
        assert a.get("precision") == b.get("precision")
        for key in set(a) - skip:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=atol), (a["step"], key)
    return single


def test_fine_tuning_on_two_ranks_matches_one_process(minilm_path: Path, tmp_path: Path) -> None:
    """`finetune classify --nproc 2` (each rank half of every batch, DDP) and one process give
    the same logged loss, dev scores and best checkpoint; a last batch with fewer rows than
    ranks is left out with a warning (here: none, 8 rows in batches of 4)."""
    model = tmp_path / "minilm"
    shutil.copytree(minilm_path, model)
    config = json.loads((model / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (model / "config.json").write_text(json.dumps(config))
    rows = [
        f"{'good fun' if i % 2 else 'dull mess'} {i},{'pos' if i % 2 else 'neg'}" for i in range(8)
    ]
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    args = [
        "finetune", "classify", "--model", str(model), "--train", str(data), "--dev", str(data),
        "--text-column", "text", "--epochs", "2", "--batch-size", "4", "--lr", "1e-4",
    ]  # fmt: skip
    two, one = on_two_ranks_and_one(args, tmp_path)
    single = assert_same_records(two, one, atol=1e-6)
    assert [r["split"] for r in single] == ["dev", "train", "dev"]  # epoch 1, step 4, epoch 2
    weights = "best/model.safetensors"
    a, b = load_file(two / weights), load_file(one / weights)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5, msg=key)


@pytest.mark.parametrize(
    ("scale", "chunk"),
    [([], "4"), (["--learn-scale"], "4"), ([], "8")],
    ids=["fixed-scale", "learned-scale", "plain-on-each-rank"],
)
def test_embedding_on_two_ranks_matches_one_process(
    tmp_path: Path, scale: list[str], chunk: str
) -> None:
    """`finetune embed --nproc 2`: each rank embeds half of every batch (16 pairs: 8 a rank,
    by gradient caching in chunks of 4 texts, or, in chunks of 8, one plain backward over
    several forwards) and the vectors are gathered, so every anchor still meets the global
    batch's negatives: the same losses, in-batch accuracy, dev recall and weights as one
    process holding the whole batch (a learned scale too, kept out of best/)."""
    from test_embed import synthetic
    from tiny import save_mlm_checkpoint

    from bertforge.tokenization import train_tokenizer

    files = synthetic(tmp_path / "data")
    tok = train_tokenizer([files["text"]], "wordpiece", 300, min_frequency=1)
    model = save_mlm_checkpoint("bert", tok, tmp_path / "start")
    config = json.loads((model / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (model / "config.json").write_text(json.dumps(config))
    args = [
        "finetune", "embed", "--model", str(model), "--train-file", str(files["train"]),
        "--dev-file", str(files["dev"]), "--batch-size", "16", "--chunk-size", chunk,
        "--max-length", "16", "--lr", "1e-4", "--max-train-examples", "96",
        *scale,
    ]  # fmt: skip
    two, one = on_two_ranks_and_one(args, tmp_path)
    assert_same_records(two, one, atol=1e-5)
    a, b = load_file(two / "best/model.safetensors"), load_file(one / "best/model.safetensors")
    assert a.keys() == b.keys() and not any("scale" in key for key in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5, msg=key)
