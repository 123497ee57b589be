"""`make demo` in CI size: embedded corpus -> tokenizer -> shards -> pretrain -> fill-mask,
with what the demo prints checked against transformers' reading of the model it exported."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import torch
import transformers

from bertforge.cli.demo import PROMPTS


def transformers_top5(model_dir: Path, text: str) -> list[str]:
    """The five most likely tokens at the mask, by transformers' BertForMaskedLM."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.BertForMaskedLM.from_pretrained(model_dir).eval()
    batch = tok(text, return_tensors="pt")
    at = (batch["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0]
    with torch.no_grad():
        logits = model(**batch).logits[0, at]
    return [tok.decode([i]).strip() for i in logits.topk(5).indices.tolist()]


def test_demo_end_to_end(tmp_path: Path) -> None:
    """As `make demo | cat` runs it: stdout and stderr into one pipe, not a terminal."""
    args = ["demo", "-o", str(tmp_path), "--max-steps", "20", "--vocab-size", "2000"]
    result = subprocess.run(
        [sys.executable, "-m", "bertforge", *args, "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    lines = result.stdout.splitlines()
    assert lines[1].startswith("corpus:") and lines[2].startswith("build-data"), lines[:4]
    assert len(PROMPTS) >= 12
    assert result.stdout.count("->") == len(PROMPTS)
    text = " ".join(result.stdout.split())  # rich wraps long lines at 80 columns off a terminal
    hf = tmp_path / "run" / "hf"
    independent = {p: transformers_top5(hf, p) for p in PROMPTS}
    hits = sum(PROMPTS[p] in top for p, top in independent.items())
    rate = f"{hits / len(PROMPTS):.0%}"
    shown = re.search(r"in the top 5 for (\d+) of (\d+) prompts \(hit rate (\d+%)\)", text)
    assert shown is not None, text
    assert shown.groups() == (str(hits), str(len(PROMPTS)), rate)
    assert "most frequent word scores" in text
    summary = json.loads((tmp_path / "run" / "demo.json").read_text())
    assert [p["text"] for p in summary["prompts"]] == list(PROMPTS)
    for prompt in summary["prompts"]:
        assert prompt["top5"] == independent[prompt["text"]]
    assert summary["hits"] == hits and 0 < summary["mlm_unigram_acc"] < 1
    assert (tmp_path / "run" / "loss.png").stat().st_size > 10_000
    records = [
        json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert records[-1]["step"] == 20
