"""Wrong family inputs end in one clear line on stderr and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_line_error
from tiny import hf_model


def saved(tmp_path: Path, family: str, suffix: str = "ForMaskedLM") -> Path:
    d = tmp_path / family
    hf_model(family, suffix).save_pretrained(d)
    return d


def edit_config(d: Path, **changes: object) -> None:
    config = json.loads((d / "config.json").read_text())
    config.update(changes)
    (d / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))


def test_a_checkpoint_named_as_another_family(tmp_path: Path) -> None:
    d = saved(tmp_path, "bert")
    edit_config(d, model_type="roberta")  # architectures still says BertForMaskedLM
    line = one_line_error("info", d)
    assert "BertForMaskedLM" in line and "model_type to 'bert'" in line
    edit_config(d, architectures=None)  # only the weights tell now
    line = one_line_error("info", d)
    assert "laid out as a bert checkpoint" in line and "bert.embeddings" in line


def test_distilbert_weights_under_a_bert_config(tmp_path: Path) -> None:
    d = saved(tmp_path, "distilbert")
    config = json.loads((d / "config.json").read_text())
    sizes = {
        "hidden_size": "dim",
        "num_hidden_layers": "n_layers",
        "num_attention_heads": "n_heads",
    }
    edit_config(
        d, model_type="bert", architectures=None, **{k: config[v] for k, v in sizes.items()}
    )
    assert "laid out as a distilbert checkpoint" in one_line_error("info", d)


def test_roberta_config_and_weights_that_disagree_on_token_types(tmp_path: Path) -> None:
    """type_vocab_size=2 is RobertaConfig's default and loads (test_default_configs.py); a
    config that says 2 over weights with one row is inconsistent, and named."""
    d = saved(tmp_path, "roberta")
    edit_config(d, type_vocab_size=2)
    line = one_line_error("fill-mask", "--model", d, "a <mask> b")
    assert "token_type_embeddings" in line and "(1, 64)" in line and "(2, 64)" in line


def test_unknown_model_type_lists_the_supported(tmp_path: Path) -> None:
    d = saved(tmp_path, "bert")
    edit_config(d, model_type="deberta")
    line = one_line_error("info", d)
    assert "unknown model_type 'deberta'" in line
    assert "albert, bert, deberta-v2, distilbert, electra, modernbert, nezha, roberta" in line


@pytest.mark.parametrize("command", ["embed", "fill-mask"])
def test_albert_without_spiece_model(tmp_path: Path, command: str) -> None:
    d = saved(tmp_path, "albert")
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "AlbertTokenizer"}))
    text = tmp_path / "texts.txt"
    text.write_text("a line\n")
    args = ("embed", text, "--model", d, "--output", tmp_path / "x.npy")
    line = one_line_error(
        *(args if command == "embed" else ("fill-mask", "a [MASK]", "--model", d))
    )
    assert "ALBERT tokenizer" in line and "spiece.model" in line
