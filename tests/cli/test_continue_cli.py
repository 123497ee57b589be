"""`pretrain --init`: the command starts from a checkpoint, and each wrong input ends in one
line on stderr and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_line_error
from tiny import save_mlm_checkpoint
from typer.testing import CliRunner

from bertforge.cli.main import app
from bertforge.data.builder import BuildConfig, build_data
from bertforge.tokenization import train_tokenizer

runner = CliRunner()
SMALL = ["--set", "train.batch_size=4", "--set", "train.micro_batch_size=4",
         "--set", "train.precision=fp32"]  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A WordPiece BertForMaskedLM, single-segment and NSP shards built with its tokenizer,
    and shards built with another one."""
    from pydoc_data.topics import topics

    root = tmp_path_factory.mktemp("continue")
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(list(topics.values())[:30]), encoding="utf-8")
    paths = {}
    for name, size in (("mine", 500), ("other", 450)):
        tok = train_tokenizer([corpus], "wordpiece", size)
        save_mlm_checkpoint("bert", tok, root / f"ckpt-{name}")
        build_data(
            tok,
            [corpus],
            root / f"data-{name}",
            BuildConfig(objective="full-sentences", max_seq_len=32),
            workers=0,
        )
        paths[name] = root / f"data-{name}"
        if name == "mine":
            build_data(tok, [corpus], root / "pairs", BuildConfig(max_seq_len=32), workers=0)
    paths["ckpt"], paths["pairs"] = root / "ckpt-mine", root / "pairs"
    return paths


def test_pretrain_init_runs_and_exports(setup: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(app, ["pretrain", "--init", str(setup["ckpt"]), "--data",
                                 str(setup["mine"]), "-o", str(tmp_path / "run"),
                                 "--max-steps", "2", *SMALL])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "started from a checkpoint: model: loaded encoder, mlm" in result.output
    assert (tmp_path / "run" / "hf" / "config.json").exists()
    recipe = (tmp_path / "run" / "recipe.toml").read_text()
    assert 'preset = "init"' in recipe and f'model = "{setup["ckpt"]}"' in recipe


def test_a_head_the_checkpoint_lacks_starts_fresh(setup: dict[str, Path], tmp_path: Path) -> None:
    """MLM + NSP from a ...ForMaskedLM: a new NSP head and pooler; BertForPreTraining out."""
    result = runner.invoke(app, ["pretrain", "--init", str(setup["ckpt"]), "--data",
                                 str(setup["pairs"]), "-o", str(tmp_path / "run"),
                                 "--max-steps", "2", "--set", "objectives.mlm=1",
                                 "--set", "objectives.nsp=1", *SMALL])  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"]
    assert "new nsp, encoder.pooler" in result.output


def test_shards_of_another_tokenizer(setup: dict[str, Path], tmp_path: Path) -> None:
    line = one_line_error("pretrain", "--init", setup["ckpt"], "--data", setup["other"],
                          "-o", tmp_path / "run", *SMALL)  # fmt: skip
    assert str(setup["other"]) in line and str(setup["ckpt"]) in line
    assert "build-data --tokenizer" in line


def test_init_of_a_directory_that_is_not_a_checkpoint(
    setup: dict[str, Path], tmp_path: Path
) -> None:
    line = one_line_error("pretrain", "--init", setup["mine"], "--data", setup["mine"],
                          "-o", tmp_path / "run")  # fmt: skip
    assert "config.json" in line and str(setup["mine"]) in line


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        # BERT's format has no E -> H map for a generator narrower than the discriminator
        (["--set", "objectives.rtd=1"], "cannot express embedding_size"),
        (["--set", "objectives.nsp=1"], "needs sentence-pair shards"),
        (["--set", "model.hidden_size=64"], "the checkpoint fixes the architecture"),
        (["--set", "family=roberta"], "drop family from the recipe"),
    ],
)
def test_settings_the_checkpoint_cannot_take(
    setup: dict[str, Path], tmp_path: Path, sets: list[str], message: str
) -> None:
    line = one_line_error("pretrain", "--init", setup["ckpt"], "--data", setup["mine"],
                          "-o", tmp_path / "run", *sets)  # fmt: skip
    assert message in line


def test_generator_without_a_discriminator(setup: dict[str, Path], tmp_path: Path) -> None:
    line = one_line_error("pretrain", "--init-generator", setup["ckpt"], "--data",
                          setup["mine"], "-o", tmp_path / "run")  # fmt: skip
    assert "--init-generator needs --init" in line
