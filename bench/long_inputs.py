"""Long inputs: ModernBERT-mini (6 layers of 256, every third layer global, the others a
128-token window) embedding and fine-tuning one sequence of 512, 2,048 and 8,192 tokens,
bertforge beside transformers on the same weights.

Rows per length: time per token and peak memory of (a) embedding: a no-grad forward of
`Encoder` / `ModernBertModel`, and (b) a fine-tuning step: `SequenceClassifier` /
`ModernBertForSequenceClassification`, forward, backward and AdamW, fp32. Each (side, task,
length) runs in a fresh interpreter: 1 warm-up call, then the median of `--reps`; memory is
the peak RSS over those calls above the RSS after the warm-up (the peak reset there, so a
compile and first-call caches are not counted). bertforge's sliding-window layers run in
blocks of 64 queries against the 192 keys around them (`models/masks.py` `WindowBlocks`) from
6 windows on, so their memory grows with the length; transformers builds a (T, T) mask for them.
Embedding also runs through `set_attention_backend(model, "flex")`: compiled flex_attention
with block masks, blocks of 128 outside a window skipped.

    .venv/bin/python bench/long_inputs.py [--lengths 512,2048,8192] [--reps 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from measure import quiet_transformers, use_threads

from bertforge import FAMILIES, Encoder

HERE = Path(__file__).resolve().parent
# bertforge-flex: the flex_attention kernel, compiled, on the unpadded stream (inference only:
# PyTorch 2.13 has no flex backward on CPU).
SIDES = ("bertforge", "transformers", "bertforge-flex")

CHILD = """
import json, statistics, sys, time, torch
sys.path.insert(0, {here!r})
from measure import quiet_transformers
quiet_transformers()
side, task, length, reps, path = {side!r}, {task!r}, {length}, {reps}, {path!r}
torch.manual_seed(0)
ids = torch.randint(5, 30522, (1, length))
mask = torch.ones_like(ids)
labels = torch.tensor([1])
if side.startswith("bertforge"):
    from bertforge import Encoder, SequenceClassifier, set_attention_backend
    from bertforge.models.encoder import set_unpadded
    if task == "embed":
        model = Encoder.from_pretrained(path).eval()
        if side == "bertforge-flex":
            set_attention_backend(model, "flex")
            set_unpadded(model)
    else:
        model = SequenceClassifier.from_pretrained(path, num_labels=2).train()
        set_unpadded(model)  # as `bertforge finetune` runs it
else:
    import transformers
    if task == "embed":
        model = transformers.AutoModel.from_pretrained(path).eval()
    else:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=2).train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True) if task == "train" else None

def call():
    if task == "embed":
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
        return
    out = model(input_ids=ids, attention_mask=mask)
    logits = out if isinstance(out, torch.Tensor) else out.logits
    torch.nn.functional.cross_entropy(logits, labels).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)

call()  # warm-up (flex: its compile), then the peak is reset: steady-state memory
import gc; gc.collect()
base = int(open('/proc/self/statm').read().split()[1]) * 4096
open('/proc/self/clear_refs', 'w').write('5')
times = []
for i in range(reps):
    t = time.perf_counter()
    call()
    times.append(time.perf_counter() - t)
hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))
peak = (int(hwm.split()[1]) * 1024 - base) / 2**20
print(json.dumps({{"s_per_call": statistics.median(times), "peak_mib": peak}}))
"""


def measure(side: str, task: str, length: int, reps: int, path: Path) -> dict:
    code = CHILD.format(
        here=str(HERE), side=side, task=task, length=length, reps=reps, path=str(path)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1][:300]}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["us_per_token"] = r["s_per_call"] / length * 1e6
    return r


def report(task: str, length: int, side: str, ours: dict, peer: dict) -> None:
    if "error" in ours or "error" in peer:
        print(f"  {task:<5} {length:>5} {side}: {ours} | {peer}", flush=True)
        return
    print(
        f"  {task:<5} {length:>5} tokens: {side} {ours['us_per_token']:8.1f} us/token "
        f"+{ours['peak_mib']:7.0f} MiB | transformers {peer['us_per_token']:8.1f} "
        f"us/token +{peer['peak_mib']:7.0f} MiB | "
        f"{peer['us_per_token'] / ours['us_per_token']:.2f}x speed, "
        f"{ours['peak_mib'] / max(peer['peak_mib'], 1):.2f}x memory",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="512,2048,8192")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    threads = use_threads()
    quiet_transformers()
    torch.manual_seed(0)
    config = FAMILIES["modernbert"].config(
        "mini", vocab_size=30522, pad_token_id=0, max_position_embeddings=8192
    )
    path = Path(tempfile.mkdtemp(prefix="modernbert-long-"))
    Encoder(config, add_pooler=False).save_pretrained(path)
    results: dict = {"threads": threads, "model": "modernbert-mini", "rows": {}}
    print(f"ModernBERT-mini, batch 1, fp32, {threads} threads")
    for task in ("embed", "train"):
        for length in map(int, args.lengths.split(",")):
            sides = SIDES if task == "embed" else SIDES[:2]
            row = {side: measure(side, task, length, args.reps, path) for side in sides}
            results["rows"][f"{task}/{length}"] = row
            peer = row["transformers"]
            for side in (s for s in sides if s != "transformers"):
                report(task, length, side, row[side], peer)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
