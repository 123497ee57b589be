"""`finetune embed` end to end on a synthetic retrieval set: a tiny random BERT learns to
find each query's document (recall far above chance), with gradient caching in chunks; its
best/ loads in sentence-transformers with the vectors `bertforge embed` gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from tiny import save_mlm_checkpoint

import bertforge
from bertforge import finetune
from bertforge.tokenization import train_tokenizer

st = pytest.importorskip("sentence_transformers")

STEMS = ("alpha", "bravo", "delta", "gamma", "kilo", "lima", "oscar", "tango")
WORDS = [f"{stem}{i}" for stem in STEMS for i in range(8)]
# A query speaks another vocabulary: only training can tie it to the documents' words.
OTHER = ("papa", "quebec", "romeo", "sierra", "uniform", "victor", "whiskey", "xray")
SYNONYMS = dict(zip(WORDS, [f"{stem}{i}" for stem in OTHER for i in range(8)], strict=True))


def synthetic(root: Path, seed: int = 0) -> dict[str, Path]:
    """Documents of 8 words; a query is the synonyms of 3 of its document's words. Train on
    300 (query, document) pairs; the dev set is 40 other documents and their queries."""
    rng = random.Random(seed)
    docs = [rng.sample(WORDS, 8) for _ in range(340)]
    queries = [[SYNONYMS[w] for w in rng.sample(d, 3)] for d in docs]
    root.mkdir(parents=True, exist_ok=True)
    with (root / "train.jsonl").open("w") as f:
        for q, d in zip(queries[:300], docs[:300], strict=True):
            f.write(json.dumps({"anchor": " ".join(q), "positive": " ".join(d)}) + "\n")
    dev = root / "dev"
    dev.mkdir()
    corpus = [{"_id": f"d{i}", "text": " ".join(d)} for i, d in enumerate(docs[300:])]
    asked = [{"_id": f"q{i}", "text": " ".join(q)} for i, q in enumerate(queries[300:])]
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}"} for i in range(40)]
    for name, records in (("corpus", corpus), ("queries", asked), ("qrels", qrels)):
        lines = "".join(json.dumps(r) + "\n" for r in records)
        (dev / f"{name}.jsonl").write_text(lines, encoding="utf-8")
    # Scored pairs: a dev query beside its own document (1) or the next one's (0).
    with (root / "sts.tsv").open("w") as f:
        f.write("sentence1\tsentence2\tscore\n")
        for i, q in enumerate(queries[300:]):
            for j, gold in ((i, 1), ((i + 1) % 40, 0)):
                f.write(f"{' '.join(q)}\t{' '.join(docs[300 + j])}\t{gold}\n")
    text = [" ".join(d) for d in docs] + [" ".join(q) for q in queries]
    (root / "text.txt").write_text("\n".join(text), encoding="utf-8")
    return {"train": root / "train.jsonl", "dev": dev / "qrels.jsonl", "text": root / "text.txt",
            "sts": root / "sts.tsv"}  # fmt: skip


def test_embed_learns_a_retrieval_set_and_saves_for_sentence_transformers(
    tmp_path: Path,
) -> None:
    files = synthetic(tmp_path / "data")
    tok = train_tokenizer([files["text"]], "wordpiece", 300, min_frequency=1)
    model = save_mlm_checkpoint("bert", tok, tmp_path / "start")
    common = {"train_file": files["train"], "dev_file": files["dev"], "batch_size": 32,
              "chunk_size": 8, "max_length": 16, "sts_dev": files["sts"]}  # fmt: skip
    before = finetune("embed", model, None, tmp_path / "none", epochs=1, lr=1e-9, **common)
    after = finetune("embed", model, None, tmp_path / "run", epochs=6, lr=2e-3, **common)
    chance = 10 / 40
    assert after.metrics["recall@10"] > max(2 * chance, before.metrics["recall@10"] + 0.2), (
        before.metrics, after.metrics)  # fmt: skip
    assert {"recall@1", "mrr@10"} <= after.metrics.keys()
    assert after.metrics["sts_spearman"] > max(0.5, before.metrics["sts_spearman"])

    best = tmp_path / "run" / "best"
    texts = ["papa1 quebec2 romeo3", "kilo4 lima5 oscar6 tango7 gamma0"]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    from typer.testing import CliRunner

    from bertforge.cli.main import app

    out = tmp_path / "v.npy"
    result = CliRunner().invoke(app, ["embed", str(tmp_path / "texts.txt"), "--model", str(best),
                                      "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    theirs = st.SentenceTransformer(str(best), device="cpu").encode(texts)
    np.testing.assert_allclose(np.load(out), theirs, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)
    # evaluate RUN scores best/ again; predict RUN embeds texts with it.
    again = bertforge.evaluate(tmp_path / "run").metrics
    for key in ("recall@1", "recall@10", "mrr@10", "sts_spearman"):
        assert again[key] == pytest.approx(after.metrics[key], abs=1e-6), key
    records = bertforge.predict(tmp_path / "run", texts, tmp_path / "out.tsv").records
    assert [r["text"] for r in records] == texts
    np.testing.assert_allclose(np.array([r["embedding"] for r in records]), theirs, atol=1e-5)
    assert (tmp_path / "out.tsv").read_text().startswith("text\tembedding\n")


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        ("none", ["--anchor-field", "question"], "train.jsonl:1: no value for column 'question'"),
        ("empty positive", [], "train.jsonl:2: field 'positive' is empty"),
        ("unknown doc", [], "qrels.jsonl:1: id 'd99' is not in corpus.jsonl; fix qrels"),
        ("none", ["--batch-size", "1"], "--batch-size 1: in-batch negatives are the other pairs"),
    ],
)
def test_bad_embedding_inputs_exit_2_in_one_line(
    tmp_path: Path, change: str, args: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from bertforge.cli.main import app

    files = synthetic(tmp_path / "data")
    if change == "empty positive":
        lines = files["train"].read_text().splitlines()
        lines[1] = json.dumps({"anchor": "papa1", "positive": ""})
        files["train"].write_text("\n".join(lines) + "\n")
    if change == "unknown doc":
        files["dev"].write_text(json.dumps({"query-id": "q0", "corpus-id": "d99"}) + "\n")
    tok = train_tokenizer([files["text"]], "wordpiece", 300, min_frequency=1)
    model = save_mlm_checkpoint("bert", tok, tmp_path / "start")
    result = CliRunner().invoke(app, ["finetune", "embed", "--model", str(model), "--output",
                                      str(tmp_path / "run"), "--train-file", str(files["train"]),
                                      "--dev-file", str(files["dev"]), *args])  # fmt: skip
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
