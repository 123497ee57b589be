"""What pretraining buys downstream: fine-tune checkpoints on a slice of SST-2 and compare.

Each model is fine-tuned with `bertforge finetune glue --task sst2` on the first
`--examples` training sentences for `--epochs` epochs, once per seed, and scored on the full
dev set (872 sentences). The figure reported is the dev accuracy after the last epoch (no
selection on dev), median over seeds. `--scratch NAME=DIR` adds a model of DIR's config with
freshly initialised weights (transformers' own initialisation): the no-pretraining baseline.

    .venv/bin/python bench/sst2_transfer.py --model ours=DIR --model peer=DIR \
        --scratch none=DIR [--seeds 1,2,3] [--examples 2000] [--epochs 3] [--json OUT]

A model directory without a tokenizer (a bare `save_pretrained`) takes the one named by
`--tokenizer`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import torch
import transformers
from measure import SHARED

import bertforge
from bertforge.training.loggers import read_metrics

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "spiece.model",
)  # fmt: skip


def copy_tokenizer(source: Path, target: Path) -> None:
    for f in source.iterdir():
        if f.name in TOKENIZER_FILES:
            shutil.copy2(f, target / f.name)


def with_tokenizer(model: Path, tokenizer: Path | None, work: Path) -> Path:
    """`model` itself if it has a tokenizer, else a copy of it with `tokenizer`'s files."""
    if (model / "tokenizer.json").exists() or (model / "vocab.txt").exists():
        return model
    if tokenizer is None:
        raise SystemExit(f"'{model}' has no tokenizer; pass --tokenizer DIR")
    out = work / f"{model.name}-with-tokenizer"
    shutil.copytree(model, out, dirs_exist_ok=True)
    copy_tokenizer(tokenizer, out)
    return out


def scratch(like: Path, out: Path, seed: int = 0) -> Path:
    """A model of `like`'s config and tokenizer with untrained weights."""
    config = transformers.AutoConfig.from_pretrained(like)
    torch.manual_seed(seed)
    transformers.AutoModelForMaskedLM.from_config(config).save_pretrained(out)
    copy_tokenizer(like, out)
    return out


def finetune(model: Path, seed: int, args: argparse.Namespace, out: Path) -> dict:
    """One fine-tuning run: dev accuracy per epoch and the training time."""
    bertforge.finetune(
        "sst2", model, args.data, out, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, seed=seed, max_train_examples=args.examples, precision=args.precision,
    )  # fmt: skip
    records = read_metrics(out)
    dev = [r["accuracy"] for r in records if r["split"] == "dev"]
    summary = next(r for r in records if r["split"] == "summary")
    return {"seed": seed, "dev_accuracy_by_epoch": dev, "train_seconds": summary["train_seconds"]}


def transfer(
    models: dict[str, Path], args: argparse.Namespace, work: Path
) -> dict[str, dict[str, object]]:
    """{name: {"median": last-epoch dev accuracy, median over seeds, "runs": [...]}}."""
    result: dict[str, dict[str, object]] = {}
    for name, path in models.items():
        runs = [finetune(path, s, args, work / f"{name}-seed{s}") for s in args.seeds]
        last = [r["dev_accuracy_by_epoch"][-1] for r in runs]
        result[name] = {"median": statistics.median(last), "runs": runs}
        print(f"{name}: SST-2 dev accuracy {result[name]['median']:.4f} (seeds: {last})")
    return result


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--scratch", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--tokenizer", type=Path, help="For model directories without one.")
    ap.add_argument("--data", type=Path, default=SHARED / "glue" / "SST-2")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4, help="1e-4: the small models' usual peak.")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--json", type=Path)
    return ap


def named(items: list[str]) -> dict[str, Path]:
    pairs = [item.partition("=") for item in items]
    bad = [item for item, (_, sep, _) in zip(items, pairs, strict=True) if not sep]
    if bad:
        raise SystemExit(f"expected NAME=DIR, got {bad[0]!r}")
    return {name: Path(path) for name, _, path in pairs}


def main() -> None:
    args = parser().parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="sst2-"))
    work.mkdir(parents=True, exist_ok=True)
    models = {n: with_tokenizer(p, args.tokenizer, work) for n, p in named(args.model).items()}
    for n, like in named(args.scratch).items():
        models[n] = scratch(with_tokenizer(like, args.tokenizer, work), work / f"{n}-init")
    result = transfer(models, args, work)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
