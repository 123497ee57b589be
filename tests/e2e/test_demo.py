"""`make demo` in CI size: embedded corpus -> tokenizer -> shards -> pretrain -> fill-mask."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bertforge.cli.main import app


def test_demo_end_to_end(tmp_path: Path) -> None:
    args = ["demo", "-o", str(tmp_path), "--max-steps", "30", "--vocab-size", "2000"]
    result = CliRunner().invoke(app, [*args, "--workers", "1"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stdout.count("->") == 4
    text = " ".join(result.stdout.split())  # rich wraps long lines at the terminal width
    assert "of 4 prompts" in text and "most frequent word scores" in text
    summary = json.loads((tmp_path / "run" / "demo.json").read_text())
    assert [p["expected"] for p in summary["prompts"]] == [
        "arguments",
        "error",
        "raised",
        "instance",
    ]
    for prompt in summary["prompts"]:  # five real tokens each
        assert len(prompt["top5"]) == 5 and "[MASK]" not in prompt["top5"]
    hits = sum(p["expected"] in p["top5"] for p in summary["prompts"])
    assert summary["hits"] == hits and 0 < summary["mlm_unigram_acc"] < 1
    assert (tmp_path / "run" / "loss.png").stat().st_size > 10_000
    records = [
        json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert records[-1]["step"] == 30
    assert (tmp_path / "run" / "hf" / "model.safetensors").exists()
