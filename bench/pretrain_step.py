"""A pretraining step per family, bertforge vs transformers, same weights and batch.

Rows: BERT-mini and BERT-base (MLM + NSP), RoBERTa-mini (MLM), ALBERT-mini (MLM + SOP,
embeddings of 128, one shared block), ELECTRA-small (a generator of 1/4 the width trained with
MLM, its samples at the masked positions, the discriminator's replaced-token loss over every
real token weighted 50, shared embeddings), DistilBERT (MLM), ModernBERT-mini (MLM; 6
layers of 256, GeGLU, every third layer global, the others a 128-token window) and
DeBERTa-mini (MLM; BERT-mini's shape with DeBERTa-v3's disentangled attention). bertforge
runs what `bertforge pretrain` runs: the family's pretraining model, its objectives and the
production `train_step` (unpadded encoder, clipping at 1.0, fused AdamW). transformers runs the
`...ForPreTraining` / `...ForMaskedLM` classes with their own losses, clipping at 1.0 and the
`Trainer`'s default optimiser (fused AdamW); for ELECTRA, `ElectraForMaskedLM` +
`ElectraForPreTraining` with `torch.multinomial` samples. Both start from the same weights and
run in this process on the same threads; each (implementation, precision) pair is timed
interleaved over the same batches. Peak memory is measured in a fresh child process per pair
(peak RSS above the RSS before the first step), since CPU allocations are invisible to
torch's allocator statistics. MFU is against a GEMM peak measured in the same run.

    .venv/bin/python bench/pretrain_step.py [--models bert-mini,roberta-mini,...]
        [--steps 10] [--batch 32] [--seq 128] [--precisions fp32,bf16] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers
from measure import gemm_peak, quiet_transformers

from bertforge import FAMILIES, EncoderConfig, PreTrainingModel
from bertforge.architectures.electra import ElectraPreTraining, generator_config
from bertforge.models.encoder import Encoder
from bertforge.objectives import pretraining_objectives
from bertforge.training.optim import adamw, param_groups
from bertforge.training.step import train_step

MASK_RATE = 0.15
# name -> (family, size preset, config overrides, heads: "pair" (NSP/SOP) and/or "rtd")
MODELS = {
    "bert-mini": ("bert", "mini", {}, "pair"),
    "bert-base": ("bert", "base", {}, "pair"),
    "roberta-mini": ("roberta", "mini", {}, ""),
    "albert-mini": ("albert", "mini", {"embedding_size": 128}, "pair"),
    "electra-small": ("electra", "small", {}, "rtd"),
    "distilbert-mini": ("distilbert", "mini", {}, ""),
    "distilbert": ("distilbert", "base", {}, ""),
    "modernbert-mini": ("modernbert", "mini", {"max_position_embeddings": 1024}, ""),
    # DeBERTa-v3's attention (256 log buckets over 512, shared key/query projections, a
    # LayerNorm'd distance table) at BERT-mini's shape.
    "deberta-mini": ("deberta-v2", "mini", {}, ""),
}
NO_TYPES = ("distilbert", "modernbert")  # their transformers classes take no token types
# transformers' label names for the sentence-pair head.
PAIR_LABEL = {"bert": "next_sentence_label", "albert": "sentence_order_label"}
OURS_WEIGHTS = "bertforge.pt"
PARTS = {"pair": ("mlm", "nsp"), "": ("mlm",)}  # head parts of the non-ELECTRA models


def config_of(name: str) -> EncoderConfig:
    family, preset, overrides, _ = MODELS[name]
    pad = 1 if family == "roberta" else 0
    return FAMILIES[family].config(preset, vocab_size=30522, pad_token_id=pad, **overrides)


def objective_weights(name: str) -> dict[str, float]:
    """The objectives as a recipe names them: what `bertforge pretrain` would train."""
    heads = MODELS[name][3]
    return {
        "mlm": 1.0,
        **({"nsp": 1.0} if heads == "pair" else {}),
        **({"rtd": 50.0} if heads == "rtd" else {}),
    }


def make_batch(cfg: EncoderConfig, batch: int, seq: int) -> dict[str, torch.Tensor]:
    """A batch in the pretraining collator's layout (bertforge) with transformers' names."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, cfg.vocab_size, (batch, seq), generator=g)
    labels = torch.full_like(ids, -100)
    picked = torch.rand(batch, seq, generator=g) < MASK_RATE
    labels[picked] = ids[picked]
    b = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mlm_labels": labels}
    types = (torch.arange(seq) >= seq // 2).long().expand(batch, seq)
    b["token_type_ids"] = types if cfg.type_vocab_size > 1 else torch.zeros_like(ids)
    b["nsp_labels"] = torch.randint(0, 2, (batch,), generator=g)
    b["sample_uniforms"] = torch.rand(batch, seq, generator=g)
    return b


def save_weights(name: str, cfg: EncoderConfig, weights: Path) -> None:
    """bertforge's freshly initialised model, in its own layout and as HF checkpoints."""
    heads = MODELS[name][3]
    if heads == "rtd":
        model = ElectraPreTraining(cfg)
        model.generator.save_pretrained(weights / "generator")
        model.discriminator.save_pretrained(weights / "discriminator")
    else:
        model = PreTrainingModel(cfg, heads=PARTS[heads])
        model.save_pretrained(weights)
    torch.save(model.state_dict(), weights / OURS_WEIGHTS)


def build(name: str, weights_dir: Path, impl: str) -> torch.nn.Module:
    heads = MODELS[name][3]
    if impl == "bertforge":  # as `bertforge pretrain` builds and runs it
        cfg = config_of(name)
        model = ElectraPreTraining(cfg) if heads == "rtd" else PreTrainingModel(cfg, PARTS[heads])
        model.load_state_dict(torch.load(weights_dir / OURS_WEIGHTS, weights_only=True))
        for module in model.modules():
            if isinstance(module, Encoder):
                module.check_inputs, module.unpad = False, True
    elif heads == "rtd":
        gen = transformers.ElectraForMaskedLM.from_pretrained(weights_dir / "generator")
        disc = transformers.ElectraForPreTraining.from_pretrained(weights_dir / "discriminator")
        gen.electra.embeddings = disc.electra.embeddings  # shared, as ELECTRA trains
        gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
        model = torch.nn.ModuleDict({"generator": gen, "discriminator": disc})
    elif heads == "pair":
        model = transformers.AutoModelForPreTraining.from_pretrained(weights_dir)
    else:
        model = transformers.AutoModelForMaskedLM.from_pretrained(weights_dir)
    return model.train()


def optimizer(model: torch.nn.Module, impl: str) -> torch.optim.Optimizer:
    """bertforge's AdamW; the `Trainer`'s default for transformers (fused AdamW, torch >= 2.8)."""
    if impl == "bertforge":
        return adamw(param_groups(model, 0.01), lr=1e-4)
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)


def electra_loss(model: torch.nn.ModuleDict, inputs: dict, b: dict) -> torch.Tensor:
    """transformers' ELECTRA: generator MLM, `torch.multinomial` samples at the masked
    positions (no gradient through them), 50 x the discriminator's loss over real tokens."""
    picked = b["mlm_labels"] != -100
    out = model["generator"](**inputs, labels=b["mlm_labels"])  # logits at every position
    with torch.no_grad():
        sampled = torch.multinomial(out.logits[picked].float().softmax(-1), 1).squeeze(-1)
    corrupted = b["input_ids"].clone()
    corrupted[picked] = sampled
    replaced = (corrupted != b["input_ids"]).long()
    disc = model["discriminator"](**{**inputs, "input_ids": corrupted}, labels=replaced).loss
    return out.loss + 50 * disc


def peer_loss(model: torch.nn.Module, name: str, b: dict) -> torch.Tensor:
    family, _, _, heads = MODELS[name]
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    if family in NO_TYPES:
        inputs.pop("token_type_ids")
    if heads == "rtd":
        return electra_loss(model, inputs, b)
    extra = {PAIR_LABEL[family]: b["nsp_labels"]} if heads == "pair" else {}
    return model(**inputs, labels=b["mlm_labels"], **extra).loss


def step_fn(model: torch.nn.Module, name: str, impl: str, b: dict, precision: str, opt) -> None:
    """One optimiser step. bertforge: its production `train_step` (objectives, unpadded
    encoder, clipping); transformers: the model's own loss, clipping at 1.0 as the `Trainer`."""
    if impl == "bertforge":
        objectives = pretraining_objectives(objective_weights(name))
        train_step(model, [b], opt, objectives, precision=precision, grad_clip=1.0)
        return
    bf16 = precision == "bf16"
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        loss = peer_loss(model, name, b)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def step_flops(cfg: EncoderConfig, heads: str, batch: int, seq: int) -> float:
    """Useful training FLOPs (forward + backward = 3x forward) of one step: the encoder's
    matmuls (every applied layer, shared or not), attention scores/values, the embedding
    projection, and the heads (vocabulary projection at masked tokens, RTD on all)."""
    h, i, e = cfg.hidden_size, cfg.intermediate_size, cfg.embedding_dim
    tokens = batch * seq
    ffn = 3 if cfg.feed_forward == "glu" else 2  # a GLU's third matrix
    window = seq if cfg.window is None else min(seq, 2 * cfg.window + 1)
    context = sum(window if cfg.layer_type(layer) == "sliding_attention" else seq
                  for layer in range(cfg.num_hidden_layers))  # fmt: skip
    per_token = cfg.num_hidden_layers * (2 * 4 * h * h + 2 * ffn * h * i) + 2 * 2 * context * h
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
from pretrain_step import build, config_of, make_batch, optimizer, step_fn
model = build({name!r}, Path({str(weights)!r}), {impl!r})
opt = optimizer(model, {impl!r})
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
    save_weights(name, cfg, weights)
    b = make_batch(cfg, args.batch, args.seq)
    models = {impl: build(name, weights, impl) for impl in ("bertforge", "transformers")}
    opts = {impl: optimizer(m, impl) for impl, m in models.items()}
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
    quiet_transformers()
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
