"""BERT-mini pretraining step (MLM + NSP), bertforge vs transformers, same weights and batch.

Both models run in this process on the same threads; each (implementation, precision) pair
is timed interleaved over the same batches. Peak memory is measured in a fresh child process
per pair (peak RSS above the RSS before the first step), since CPU allocations are
invisible to torch's allocator statistics. MFU is against a measured GEMM peak.

    .venv/bin/python bench/pretrain_step.py [--steps 10] [--batch 32] [--seq 128]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from measure import gemm_peak

from bertforge import EncoderConfig, PreTrainingModel

MASK_RATE = 0.15


def make_batch(cfg: EncoderConfig, batch: int, seq: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, cfg.vocab_size, (batch, seq), generator=g)
    labels = torch.full_like(ids, -100)
    picked = torch.rand(batch, seq, generator=g) < MASK_RATE
    labels[picked] = ids[picked]
    types = torch.zeros_like(ids)
    types[:, seq // 2 :] = 1
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "next_sentence_label": torch.randint(0, 2, (batch,), generator=g),
    }


def build(cfg: EncoderConfig, weights_dir: Path, impl: str) -> torch.nn.Module:
    if impl == "bertforge":
        model = PreTrainingModel.from_pretrained(weights_dir)
        model.encoder.check_inputs = False
    else:
        model = transformers.BertForPreTraining.from_pretrained(weights_dir)
    return model.train()


def step_fn(model: torch.nn.Module, impl: str, b: dict, precision: str, opt) -> None:
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    with ctx:
        if impl == "bertforge":
            picked = b["labels"] != -100
            out = model(b["input_ids"], b["attention_mask"], b["token_type_ids"], picked)
            loss = F.cross_entropy(out.mlm_logits.float(), b["labels"][picked]) + F.cross_entropy(
                out.nsp_logits.float(), b["next_sentence_label"]
            )
        else:
            loss = model(**b).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def step_flops(cfg: EncoderConfig, batch: int, seq: int) -> float:
    """Useful training FLOPs (forward + backward = 3x forward) of one step: the encoder's
    matmuls, attention scores/values, and the vocabulary projection of the masked tokens."""
    h, i, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    tokens = batch * seq
    per_token = layers * (2 * 4 * h * h + 2 * 2 * h * i + 2 * 2 * seq * h)
    vocab = MASK_RATE * tokens * 2 * (h * h + h * cfg.vocab_size)
    return 3 * (tokens * per_token + vocab)


def measure_memory(weights: Path, impl: str, precision: str, batch: int, seq: int) -> float:
    """Peak RSS growth (MiB) of 3 training steps, in a fresh interpreter."""
    # VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss across fork + exec.
    code = f"""
import sys, torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pretrain_step import build, make_batch, step_fn
from bertforge import PreTrainingModel
cfg = PreTrainingModel.from_pretrained({str(weights)!r}).config
model = build(cfg, __import__('pathlib').Path({str(weights)!r}), {impl!r})
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
b = make_batch(cfg, {batch}, {seq})
import gc; gc.collect()
base = int(open('/proc/self/statm').read().split()[1]) * 4096
for _ in range(3):
    step_fn(model, {impl!r}, b, {precision!r}, opt)
hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))
print((int(hwm.split()[1]) * 1024 - base) / 2**20)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = EncoderConfig.preset("mini")
    weights = Path(tempfile.mkdtemp(prefix="bench-weights-"))
    PreTrainingModel(cfg).save_pretrained(weights)  # one set of weights for both
    b = make_batch(cfg, args.batch, args.seq)
    tokens = args.batch * args.seq
    flops = step_flops(cfg, args.batch, args.seq)
    print(f"threads={torch.get_num_threads()} batch={args.batch} seq={args.seq} BERT-mini")
    results = {}
    for precision in ("fp32", "bf16"):
        peak = gemm_peak(torch.float32 if precision == "fp32" else torch.bfloat16)
        models = {impl: build(cfg, weights, impl) for impl in ("bertforge", "transformers")}
        opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
        times = {k: [] for k in models}
        for i in range(args.steps + 2):
            for impl, model in models.items():
                t = time.perf_counter()
                step_fn(model, impl, b, precision, opts[impl])
                if i >= 2:  # the first steps allocate and warm kernels
                    times[impl].append(time.perf_counter() - t)
        for impl in models:
            sec = sorted(times[impl])[len(times[impl]) // 2]  # median
            mem = measure_memory(weights, impl, precision, args.batch, args.seq)
            results[(impl, precision)] = {
                "tokens_per_s": tokens / sec,
                "mfu": flops / sec / peak,
                "peak_mib": mem,
                "gemm_peak_tflops": peak / 1e12,
            }
        ours, hf = results[("bertforge", precision)], results[("transformers", precision)]
        print(f"\n{precision} (GEMM peak {peak / 1e9:.0f} GFLOP/s)")
        for impl in ("bertforge", "transformers"):
            r = results[(impl, precision)]
            print(
                f"  {impl:<13} {r['tokens_per_s']:9,.0f} tok/s  MFU {r['mfu']:6.1%}  "
                f"peak +{r['peak_mib']:7.0f} MiB"
            )
        print(
            f"  ratio         {ours['tokens_per_s'] / hf['tokens_per_s']:.2f}x tokens/s, "
            f"{ours['peak_mib'] / hf['peak_mib']:.2f}x memory"
        )
    if args.json:
        flat = {f"{impl}/{precision}": r for (impl, precision), r in results.items()}
        args.json.write_text(json.dumps(flat, indent=2))


if __name__ == "__main__":
    main()
