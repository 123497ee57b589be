"""A pretraining step per family, bertforge vs transformers, same weights and batch.

Rows: BERT-mini (MLM + NSP), RoBERTa-mini (MLM), ALBERT-mini (MLM + SOP, embeddings of 128,
one shared block), ELECTRA-small (a generator of 1/4 the hidden size trained with MLM, its
samples at the masked positions, the discriminator's replaced-token loss over every real
token weighted 50, shared embeddings) and DistilBERT (MLM). Both models run in this process
on the same threads; each (implementation, precision) pair is timed interleaved over the same
batches. Peak memory is measured in a fresh child process per pair (peak RSS above the RSS
before the first step), since CPU allocations are invisible to torch's allocator statistics.
MFU is against a GEMM peak measured in the same run.

    .venv/bin/python bench/pretrain_step.py [--models bert-mini,roberta-mini,...]
        [--steps 10] [--batch 32] [--seq 128] [--precisions fp32,bf16] [--json OUT]
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

from bertforge import FAMILIES, EncoderConfig, PreTrainingModel
from bertforge.heads.electra import sample_tokens, tie_embeddings

MASK_RATE = 0.15
# name -> (family, size preset, config overrides, heads: "pair" (NSP/SOP) and/or "rtd")
MODELS = {
    "bert-mini": ("bert", "mini", {}, "pair"),
    "roberta-mini": ("roberta", "mini", {}, ""),
    "albert-mini": ("albert", "mini", {"embedding_size": 128}, "pair"),
    "electra-small": ("electra", "small", {}, "rtd"),
    "distilbert-mini": ("distilbert", "mini", {}, ""),
    "distilbert": ("distilbert", "base", {}, ""),
}
# transformers' label names for the sentence-pair head.
PAIR_LABEL = {"bert": "next_sentence_label", "albert": "sentence_order_label"}


def config_of(name: str) -> EncoderConfig:
    family, preset, overrides, _ = MODELS[name]
    pad = 1 if family == "roberta" else 0
    return FAMILIES[family].config(preset, vocab_size=30522, pad_token_id=pad, **overrides)


def make_batch(cfg: EncoderConfig, batch: int, seq: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, cfg.vocab_size, (batch, seq), generator=g)
    labels = torch.full_like(ids, -100)
    picked = torch.rand(batch, seq, generator=g) < MASK_RATE
    labels[picked] = ids[picked]
    b = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    if cfg.type_vocab_size > 1:
        b["token_type_ids"] = (torch.arange(seq) >= seq // 2).long().expand(batch, seq)
    b["pair"] = torch.randint(0, 2, (batch,), generator=g)
    return b


def generator_config(cfg: EncoderConfig) -> EncoderConfig:
    """ELECTRA's generator: the discriminator with a quarter of its width."""
    return cfg.replace(
        hidden_size=cfg.hidden_size // 4,
        num_attention_heads=max(1, cfg.num_attention_heads // 4),
        intermediate_size=cfg.intermediate_size // 4,
    )


class ElectraPair(torch.nn.Module):
    """Generator + discriminator sharing embeddings, either implementation."""

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator


def _ours(weights_dir: Path) -> PreTrainingModel:
    model = PreTrainingModel.from_pretrained(weights_dir)
    model.encoder.check_inputs = False
    model.encoder.unpad = True  # as pretraining runs it (these batches have no padding)
    return model


def build(name: str, weights_dir: Path, impl: str) -> torch.nn.Module:
    heads = MODELS[name][3]
    if heads == "rtd":
        if impl == "bertforge":
            gen, disc = _ours(weights_dir / "generator"), _ours(weights_dir / "discriminator")
            tie_embeddings(gen, disc)
        else:
            gen = transformers.ElectraForMaskedLM.from_pretrained(weights_dir / "generator")
            disc = transformers.ElectraForPreTraining.from_pretrained(weights_dir / "discriminator")
            gen.electra.embeddings = disc.electra.embeddings  # shared, as ELECTRA trains
            gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
        model = ElectraPair(gen, disc)
    elif impl == "bertforge":
        model = _ours(weights_dir)
    elif heads == "pair":
        model = transformers.AutoModelForPreTraining.from_pretrained(weights_dir)
    else:
        model = transformers.AutoModelForMaskedLM.from_pretrained(weights_dir)
    return model.train()


def electra_loss(model: ElectraPair, impl: str, inputs: dict, b: dict) -> torch.Tensor:
    """MLM on the generator, its samples at the masked positions (no gradient through them),
    and 50 x the discriminator's replaced-token loss over the real tokens."""
    picked = b["labels"] != -100
    if impl == "bertforge":
        logits = model.generator(**inputs, masked_positions=picked).mlm_logits  # (M, V)
        mlm = F.cross_entropy(logits.float(), b["labels"][picked])
    else:
        out = model.generator(**inputs, labels=b["labels"])  # logits at every position
        mlm, logits = out.loss, out.logits[picked]
    with torch.no_grad():  # each side samples as its users would
        if impl == "bertforge":
            sampled = sample_tokens(logits)
        else:
            sampled = torch.multinomial(logits.float().softmax(-1), 1).squeeze(-1)
    corrupted = b["input_ids"].clone()
    corrupted[picked] = sampled
    replaced = (corrupted != b["input_ids"]).long()
    inputs = {**inputs, "input_ids": corrupted}
    if impl == "bertforge":
        rtd = model.discriminator(**inputs).rtd_logits
        real = b["attention_mask"].bool()
        disc = F.binary_cross_entropy_with_logits(rtd.float()[real], replaced[real].float())
    else:
        disc = model.discriminator(**inputs, labels=replaced).loss
    return mlm + 50 * disc


def loss_of(model: torch.nn.Module, name: str, impl: str, b: dict) -> torch.Tensor:
    family, _, _, heads = MODELS[name]
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in b}
    if heads == "rtd":
        return electra_loss(model, impl, inputs, b)
    if impl == "transformers":
        extra = {PAIR_LABEL[family]: b["pair"]} if heads == "pair" else {}
        return model(**inputs, labels=b["labels"], **extra).loss
    picked = b["labels"] != -100
    out = model(**inputs, masked_positions=picked)
    loss = F.cross_entropy(out.mlm_logits.float(), b["labels"][picked])
    if heads == "pair":
        loss = loss + F.cross_entropy(out.nsp_logits.float(), b["pair"])
    return loss


def step_fn(model: torch.nn.Module, name: str, impl: str, b: dict, precision: str, opt) -> None:
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    with ctx:
        loss = loss_of(model, name, impl, b)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def step_flops(cfg: EncoderConfig, heads: str, batch: int, seq: int) -> float:
    """Useful training FLOPs (forward + backward = 3x forward) of one step: the encoder's
    matmuls (every applied layer, shared or not), attention scores/values, the embedding
    projection, and the heads (vocabulary projection at masked tokens, RTD on all)."""
    h, i, e = cfg.hidden_size, cfg.intermediate_size, cfg.embedding_dim
    tokens = batch * seq
    per_token = cfg.num_hidden_layers * (2 * 4 * h * h + 2 * 2 * h * i + 2 * 2 * seq * h)
    if cfg.embedding_size is not None:
        per_token += 2 * e * h
    if heads == "rtd":  # the generator's MLM step, then the discriminator and its head
        rtd = 3 * tokens * 2 * (h * h + h)
        return step_flops(generator_config(cfg), "", batch, seq) + 3 * tokens * per_token + rtd
    mlm = MASK_RATE * tokens * 2 * (h * e + e * cfg.vocab_size)
    return 3 * (tokens * per_token + mlm)


def measure_memory(
    name: str, weights: Path, impl: str, precision: str, batch: int, seq: int
) -> float:
    """Peak RSS growth (MiB) of 3 training steps, in a fresh interpreter."""
    code = f"""
import sys, torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from pretrain_step import build, config_of, make_batch, step_fn
model = build({name!r}, Path({str(weights)!r}), {impl!r})
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
b = make_batch(config_of({name!r}), {batch}, {seq})
import gc; gc.collect()
base = int(open('/proc/self/statm').read().split()[1]) * 4096
for _ in range(3):
    step_fn(model, {name!r}, {impl!r}, b, {precision!r}, opt)
hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))
print((int(hwm.split()[1]) * 1024 - base) / 2**20)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench(name: str, precision: str, args: argparse.Namespace, peak: float) -> dict:
    cfg = config_of(name)
    heads = MODELS[name][3]
    torch.manual_seed(0)
    weights = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    if heads == "rtd":
        PreTrainingModel(generator_config(cfg), nsp=False).save_pretrained(weights / "generator")
        disc = PreTrainingModel(cfg, nsp=False, mlm=False, rtd=True)
        disc.save_pretrained(weights / "discriminator")
    else:
        PreTrainingModel(cfg, nsp=heads == "pair").save_pretrained(weights)
    b = make_batch(cfg, args.batch, args.seq)
    models = {impl: build(name, weights, impl) for impl in ("bertforge", "transformers")}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(args.steps + 2):
        for impl, model in models.items():
            t = time.perf_counter()
            step_fn(model, name, impl, b, precision, opts[impl])
            if i >= 2:  # the first steps allocate and warm kernels
                times[impl].append(time.perf_counter() - t)
    flops = step_flops(cfg, heads, args.batch, args.seq)
    out = {}
    for impl in models:
        sec = sorted(times[impl])[len(times[impl]) // 2]  # median
        out[impl] = {
            "tokens_per_s": args.batch * args.seq / sec,
            "mfu": flops / sec / peak,
            "peak_mib": measure_memory(name, weights, impl, precision, args.batch, args.seq),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    print(f"threads={torch.get_num_threads()} batch={args.batch} seq={args.seq}")
    results = {}
    for precision in args.precisions.split(","):
        peak = gemm_peak(torch.float32 if precision == "fp32" else torch.bfloat16)
        print(f"\n{precision} (GEMM peak {peak / 1e9:.0f} GFLOP/s)")
        for name in args.models.split(","):
            r = bench(name, precision, args, peak)
            ours, hf = r["bertforge"], r["transformers"]
            print(
                f"  {name:<14} bertforge {ours['tokens_per_s']:8,.0f} tok/s MFU {ours['mfu']:5.1%} "
                f"+{ours['peak_mib']:5.0f} MiB | transformers {hf['tokens_per_s']:8,.0f} tok/s "
                f"MFU {hf['mfu']:5.1%} +{hf['peak_mib']:5.0f} MiB | "
                f"{ours['tokens_per_s'] / hf['tokens_per_s']:.2f}x speed, "
                f"{ours['peak_mib'] / hf['peak_mib']:.2f}x memory",
                flush=True,
            )
            results[f"{name}/{precision}"] = {**r, "gemm_peak_gflops": peak / 1e9}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
