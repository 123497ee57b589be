"""Fine-tune pretrained checkpoints on CoNLL-2003 NER and SQuAD v1.1 through `bertforge.finetune`.

CoNLL-2003: the whole train file, scored by entity F1 on testa; SQuAD: the first
`--squad-examples` questions of the (rebuilt) train set at `--max-length` tokens, scored by
the official EM/F1 on the first `--squad-dev` dev questions. Same settings for every model
(epochs, batch, peak lr, seed, precision), one after the other on the same threads.

    .venv/bin/python bench/downstream.py --model modernbert=DIR --model deberta=DIR
        [--tasks ner,squad] [--epochs 3] [--squad-epochs 2] [--lr 1e-4] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from measure import SHARED, use_threads

import bertforge


def run(args: argparse.Namespace, name: str, model: Path, task: str) -> dict:
    """One fine-tuning run; its dev metrics and wall time."""
    out = args.work / f"{name}-{task}"
    if task == "ner":
        options = {"epochs": args.epochs}
        data = SHARED / "conll2003"
    else:
        options = {
            "epochs": args.squad_epochs,
            "max_train_examples": args.squad_examples,
            "max_eval_examples": args.squad_dev,
            "max_length": args.max_length,
            "doc_stride": args.max_length // 4,
        }
        data = SHARED / "squad"
    start = time.perf_counter()
    result = bertforge.finetune(task, model, data, out, batch_size=args.batch_size, lr=args.lr,
                                seed=args.seed, precision=args.precision, **options)  # fmt: skip
    row = {k: v for k, v in result.metrics.items() if isinstance(v, float | int)}
    row["seconds"] = round(time.perf_counter() - start, 1)
    print(name, task, json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", default=[], metavar="NAME=DIR", required=True)
    ap.add_argument("--tasks", default="ner,squad")
    ap.add_argument("--epochs", type=int, default=3, help="CoNLL epochs")
    ap.add_argument("--squad-epochs", type=int, default=2)
    ap.add_argument("--squad-examples", type=int, default=8000)
    ap.add_argument("--squad-dev", type=int, default=2000)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4, help="1e-4: the small models' usual peak.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.work = args.work or Path(tempfile.mkdtemp(prefix="downstream-"))
    threads = use_threads()
    models = dict(item.split("=", 1) for item in args.model)
    rows: dict[str, dict] = {}
    for name, path in models.items():
        rows[name] = {task: run(args, name, Path(path), task) for task in args.tasks.split(",")}
        if args.json:
            settings = {k: str(v) for k, v in vars(args).items()}
            result = {"threads": threads, "settings": settings, "rows": rows}
            args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
