"""The training commands over the Python API: `pretrain`, `export`, `plot`, `finetune TASK`,
`evaluate` and `predict`: their flags, their output, and bad input as one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers
from typer.testing import CliRunner

from bertforge.cli.main import app
from bertforge.data.builder import BuildConfig, build_data
from bertforge.tokenization import Tokenizer

runner = CliRunner()
TINY = ["preset=tiny", "train.micro_batch_size=8", "train.lr=1e-3",
        "train.warmup_steps=1", "train.eval_every=100", "train.log_every=1",
        "train.precision=fp32"]  # fmt: skip


def run(*args: object, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code == 2:  # one line naming the problem, never a traceback
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    return result.stdout, result.stderr


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    from pydoc_data.topics import topics

    root = tmp_path_factory.mktemp("pretrain")
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(list(topics.values())[:20]), encoding="utf-8")
    out = root / "data"
    build_data(Tokenizer.from_pretrained(minilm_path), [corpus], out, BuildConfig(max_seq_len=64))
    return out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.lrr=1"], "unknown train key 'lrr'"),
        (["--config", "nope.toml"], "recipe 'nope.toml' does not exist"),
        (["--resume"], "no complete checkpoint to resume"),
        (["--report-to", "wandb"], "--report-to wandb: choose from tensorboard"),
    ],
)
def test_pretrain_errors(data_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    _, err = run("pretrain", "--data", data_dir, "--output", tmp_path / "run", *args, code=2)
    assert message in err


def test_pretrain_stop_resume_export_and_plot(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    sets = [arg for item in TINY for arg in ("--set", item)]
    base = ("pretrain", "--data", data_dir, "--output", out, "--max-steps", 3, *sets)
    base = (*base, "--batch-size", 8)  # --set would win over a flag
    stdout, _ = run(*base, "--stop-at", 1)
    assert stdout.strip() == "stopped at step 1; continue with --resume"
    (out / "loss.png").unlink(missing_ok=True)
    run("export", out, "--output", tmp_path / "hf")  # the step-1 checkpoint, the older form
    _, info = transformers.BertForPreTraining.from_pretrained(
        tmp_path / "hf", output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert Tokenizer.from_pretrained(tmp_path / "hf").vocab_size == 30522
    stdout, _ = run("plot", out)
    assert (out / "loss.png").stat().st_size > 10_000
    _, err = run(*base[:-1], 16, "--resume", code=2)
    assert "train.batch_size: 8 -> 16" in err and "--allow-changes" in err
    stdout, _ = run(*base, "--resume")
    assert stdout.startswith(f"exported to {out / 'hf'}")
    _, err = run("export", "run", tmp_path / "nothing", "-o", tmp_path / "x", code=2)
    assert "no complete checkpoint" in err


def _sst2(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 32), ("dev", 16)):
        rows = "".join(
            f"{'a fine good film' if i % 2 else 'a dull bad mess'} {i}\t{i % 2}\n" for i in range(n)
        )
        (folder / f"{split}.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    return folder


def test_finetune_evaluate_predict(minilm_path: Path, tmp_path: Path) -> None:
    data, out = _sst2(tmp_path / "SST-2"), tmp_path / "run"
    stdout, _ = run("finetune", "glue", "--task", "SST-2", "--model", minilm_path, "--data",
                    data, "--output", out, "--epochs", 1, "--batch-size", 16, "--lr", 1e-4,
                    "--eval-every", 1, "--group-by-length")  # fmt: skip
    trained = json.loads(stdout.strip().splitlines()[-1])
    assert trained == json.loads((out / "eval_results.json").read_text())
    stdout, _ = run("evaluate", out, "--precision", "bf16")
    evaluated = json.loads(stdout)
    assert evaluated["precision"] == "bf16" and set(evaluated) == set(trained)
    (tmp_path / "in.tsv").write_text("sentence\na good film\na bad mess\n", encoding="utf-8")
    stdout, _ = run("predict", out, "--input", tmp_path / "in.tsv", "--output",
                    tmp_path / "out.jsonl")  # fmt: skip
    assert stdout.strip() == f"wrote 2 predictions to {tmp_path / 'out.jsonl'}"
    _, err = run("predict", out, "--input", tmp_path / "in.tsv", "-o", tmp_path / "o.csv", code=2)
    assert "must end in .jsonl or .tsv" in err


@pytest.fixture()
def csv_train(tmp_path: Path) -> Path:
    rows = "".join(f"{'good fun' if i % 2 else 'dull mess'} {i},{'pos' if i % 2 else 'neg'}\n"
                   for i in range(8))  # fmt: skip
    (tmp_path / "train.csv").write_text("text,label\n" + rows, encoding="utf-8")
    return tmp_path / "train.csv"


@pytest.mark.parametrize(
    ("dev_text", "extra", "expected"),
    [
        ("text,label\nfine film,meh\n", [], "not in the label set"),
        ("text,label\nfine film,pos\n", ["--pair-column", "other"], "column 'other'"),
        ("", [], "empty"),
    ],
    ids=["unknown-label", "missing-column", "empty-file"],
)
def test_classify_bad_inputs_exit_2_one_line(
    tmp_path: Path, minilm_path: Path, csv_train: Path, dev_text: str, extra: list, expected: str
) -> None:
    dev = tmp_path / "dev.csv"
    dev.write_text(dev_text, encoding="utf-8")
    _, err = run("finetune", "classify", "--model", minilm_path, "--train", csv_train, "--dev",
                 dev, "--text-column", "text", "--output", tmp_path / "run", *extra,
                 code=2)  # fmt: skip
    assert expected in err


def test_finetune_errors_exit_2(tmp_path: Path, minilm_path: Path) -> None:
    base = ("finetune", "glue", "--model", minilm_path, "--data", tmp_path, "--output",
            tmp_path / "run")  # fmt: skip
    assert "unknown GLUE task 'sst3'" in run(*base, "--task", "sst3", code=2)[1]
    assert "unknown GLUE task 'ner'" in run(*base, "--task", "ner", code=2)[1]
    assert "--strategy 'magic'" in run(*base, "--task", "sst2", "--strategy", "magic", code=2)[1]
    _, err = run(*base, "--task", "sst2", code=2)
    assert "no train file (train.tsv)" in err and "--train-file" in err


def test_help_lists_every_task_and_its_predict_input() -> None:
    from bertforge.tasks import all_tasks

    stdout, _ = run("finetune", "--help")
    assert all(task.command in stdout for task in all_tasks())
    stdout, _ = run("predict", "--help")
    text = " ".join(stdout.replace("│", " ").split())
    for task in all_tasks():
        assert " ".join(task.predict_input.split())[:40] in text, task.name
