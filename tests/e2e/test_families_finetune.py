"""Every family fine-tunes on every kind of task, on tiny self-contained data, and its best/
checkpoint opens in `transformers` (model and tokenizer) with equal logits. NEZHA,
which transformers 5 does not ship, is checked by reloading best/ in bertforge."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from tiny import save_mlm_checkpoint

from bertforge import FAMILIES, finetune
from bertforge.finetuning import load_run
from bertforge.tokenization import train_tokenizer

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
    return {
        name: save_mlm_checkpoint(name, tokenizers[fam.tokenizer], tmp_path_factory.mktemp(name))
        for name, fam in FAMILIES.items()
    }


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


def data(root: Path, task: str) -> dict[str, Any]:
    """Write tiny data for `task` into `root`; return the task's options."""
    root.mkdir(parents=True, exist_ok=True)
    if task == "classify":
        for split, n in (("train", 32), ("dev", 12)):
            rows = "".join(f"{t},{'pos' if y else 'neg'}\n" for t, y in sentences(n))
            (root / f"{split}.csv").write_text("text,label\n" + rows, encoding="utf-8")
        return {"text_column": "text"}
    if task == "sst2":
        for split, n in (("train", 32), ("dev", 12)):
            rows = "".join(f"{t}\t{y}\n" for t, y in sentences(n))
            (root / f"{split}.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
        return {}
    if task == "ner":
        (root / "eng.train").write_text(conll(24), encoding="utf-8")
        (root / "eng.testa").write_text(conll(8), encoding="utf-8")
        return {}
    for split, n in (("train", 24), ("dev", 8)):
        (root / f"{split}-v1.1.json").write_text(json.dumps(squad(n)), encoding="utf-8")
    return {"max_length": 48, "doc_stride": 16}


AUTO = {
    "classify": "AutoModelForSequenceClassification",
    "sst2": "AutoModelForSequenceClassification",
    "ner": "AutoModelForTokenClassification",
    "squad": "AutoModelForQuestionAnswering",
}
CASES = [(f, c) for f in FAMILIES for c in AUTO]


@pytest.mark.parametrize(("name", "command"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_finetunes_and_best_opens_in_transformers(
    tmp_path: Path, checkpoints: dict[str, Path], name: str, command: str
) -> None:
    run = tmp_path / "run"
    options = data(tmp_path / "data", command)
    result = finetune(command, checkpoints[name], tmp_path / "data", run, epochs=1,
                      batch_size=8, lr=1e-3, **options)  # fmt: skip
    assert result.metrics == json.loads((run / "eval_results.json").read_text())
    best = load_run(run)
    ours, tok = best.model, best.tokenizer
    texts, pairs = ["good film", "alice lives in paris"], None
    if command == "squad":
        texts, pairs = ["where does bob live?"] * 2, ["bob lives in london.", "x"]
    batch = tok(texts, pairs, padding=True, return_tensors="pt")
    with torch.no_grad():
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    if name == "nezha":  # no transformers 5 class: a second load must agree
        again = load_run(run).model
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
    if command in ("ner", "squad"):  # per token: what sits at padding is read by nothing
        real = batch["attention_mask"].bool()  # (DeBERTa's padding rows attend to no key)
        if command == "squad":
            got, expected = [x[real] for x in got], [x[real] for x in expected]
        else:
            got, expected = got[real], expected[real]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
