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
    predictions = [line for line in result.stdout.splitlines() if "->" in line]
    assert len(predictions) == 4
    for line in predictions:  # five real tokens with probabilities, e.g. "the (0.04)"
        assert line.count("(") == 5 and "[MASK]" not in line
    assert (tmp_path / "run" / "loss.png").stat().st_size > 10_000
    records = [
        json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert records[-1]["step"] == 30
    assert (tmp_path / "run" / "hf" / "model.safetensors").exists()
