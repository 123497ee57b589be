"""Every family fine-tunes through every `finetune` command, on tiny self-contained data, and
its best/ checkpoint opens in `transformers` (model and tokenizer) with equal logits. NEZHA,
which transformers 5 does not ship, is checked by reloading best/ in bertforge."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from typer.testing import CliRunner

from bertforge import FAMILIES, PreTrainingModel
from bertforge.cli.main import app
from bertforge.interop.hf import tokenizer_class
from bertforge.tokenization import train_tokenizer
from bertforge.training.finetune import load_best

runner = CliRunner()
EXTRA = {"albert": {"embedding_size": 32}, "electra": {"embedding_size": 32}}
WORDS = ["good", "fine", "great", "dull", "bad", "awful", "paris", "london", "alice", "bob"]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory, doc_lines: list[str]) -> dict:
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    corpus.write_text("\n".join(doc_lines[::3] + [" ".join(WORDS)] * 5), encoding="utf-8")
    kinds = {f.tokenizer for f in FAMILIES.values()}
    return {kind: train_tokenizer([corpus], kind, 800, min_frequency=1) for kind in kinds}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, tokenizers: dict) -> dict[str, Path]:
    """A tiny random pretraining checkpoint (+ tokenizer of its kind) per family."""
    out = {}
    for name, fam in FAMILIES.items():
        tok = tokenizers[fam.tokenizer]
        config = fam.config(
            "tiny",
            vocab_size=tok.vocab_size,
            pad_token_id=tok.pad_token_id,
            max_position_embeddings=66,
            **EXTRA.get(name, {}),
        )
        torch.manual_seed(0)
        d = tmp_path_factory.mktemp(name)
        PreTrainingModel(config, heads=("mlm",)).save_pretrained(d)
        tok.save_pretrained(d, tokenizer_class(config, tok))
        out[name] = d
    return out


def sentences(n: int) -> list[tuple[str, int]]:
    return [(f"{WORDS[i % 6]} film number {i}", int(i % 6 < 3)) for i in range(n)]


def conll(n: int) -> str:
    rows = []
    for i in range(n):
        rows.append(f"{WORDS[6 + i % 2]} NNP B-NP I-LOC\nis VBZ B-VP O\n"
                    f"{WORDS[8 + i % 2]} NNP B-NP I-PER\n")  # fmt: skip
    return "-DOCSTART- -X- -X- O\n\n" + "\n".join(rows)


def squad(n: int) -> dict[str, Any]:
    paragraphs = []
    for i in range(n):
        name, city = WORDS[8 + i % 2], WORDS[6 + i % 2]
        context = f"{name} lives in {city} and works there."
        qa = {"id": f"q{i}", "question": f"where does {name} live?",
              "answers": [{"text": city, "answer_start": context.index(city)}]}  # fmt: skip
        paragraphs.append({"context": context, "qas": [qa]})
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}


def data(root: Path, command: str) -> list[str]:
    """Write tiny data for `command`; return its data options."""
    root.mkdir(parents=True, exist_ok=True)
    if command == "classify":
        for split, n in (("train", 32), ("dev", 12)):
            rows = "".join(f"{t},{'pos' if y else 'neg'}\n" for t, y in sentences(n))
            (root / f"{split}.csv").write_text("text,label\n" + rows, encoding="utf-8")
        return ["--train", str(root / "train.csv"), "--dev", str(root / "dev.csv"),
                "--text-column", "text"]  # fmt: skip
    if command == "glue":
        for split, n in (("train", 32), ("dev", 12)):
            rows = "".join(f"{t}\t{y}\n" for t, y in sentences(n))
            (root / f"{split}.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
        return ["--task", "sst2", "--data", str(root)]
    if command == "ner":
        (root / "eng.train").write_text(conll(24), encoding="utf-8")
        (root / "eng.testa").write_text(conll(8), encoding="utf-8")
        return ["--data", str(root)]
    for split, n in (("train", 24), ("dev", 8)):
        (root / f"{split}-v1.1.json").write_text(json.dumps(squad(n)), encoding="utf-8")
    return ["--data", str(root), "--max-length", "48", "--doc-stride", "16"]


AUTO = {
    "classify": "AutoModelForSequenceClassification",
    "glue": "AutoModelForSequenceClassification",
    "ner": "AutoModelForTokenClassification",
    "squad": "AutoModelForQuestionAnswering",
}
CASES = [(f, c) for f in FAMILIES for c in AUTO]


@pytest.mark.parametrize(("name", "command"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_finetunes_and_best_opens_in_transformers(
    tmp_path: Path, checkpoints: dict[str, Path], name: str, command: str
) -> None:
    run = tmp_path / "run"
    args = ["finetune", command, "--model", str(checkpoints[name]), "--output", str(run),
            "--epochs", "1", "--batch-size", "8", "--lr", "1e-3"]  # fmt: skip
    args += data(tmp_path / "data", command)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "eval_results.json").read_text())
    _, ours, tok = load_best(run)
    texts, pairs = ["good film", "alice lives in paris"], None
    if command == "squad":
        texts, pairs = ["where does bob live?"] * 2, ["bob lives in london.", "x"]
    batch = tok(texts, pairs, padding=True, return_tensors="pt")
    with torch.no_grad():
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    if name == "nezha":  # no transformers 5 class: a second load must agree
        _, again, _ = load_best(run)
        with torch.no_grad():
            same = again(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        torch.testing.assert_close(same, got)
        return
    theirs_tok = transformers.AutoTokenizer.from_pretrained(run / "best")
    assert theirs_tok(texts, pairs)["input_ids"] == tok(texts, pairs)["input_ids"]
    theirs = getattr(transformers, AUTO[command]).from_pretrained(run / "best").eval()
    takes = inspect.signature(theirs.forward).parameters  # DistilBERT takes no token types
    inputs = {k: v for k, v in batch.items() if k in takes}
    with torch.no_grad():
        out = theirs(**inputs)
    expected = (out.start_logits, out.end_logits) if command == "squad" else out.logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
