"""Which masking helps a small Chinese model: characters, whole words, or knowledge units?

One corpus (the shared Chinese Wikipedia sample, plus the CMRC 2018 trial passages), one
Chinese WordPiece vocabulary trained on it, one `build-data --segmenter jieba --lexicon`
build (its shards carry word and knowledge-unit flags, so all three maskings read the same
instances), then BERT-mini pretrained for the same wall time with `[masking] mode` = token
(character level), whole_word (jieba words) and knowledge (ERNIE: the Wikipedia article
titles as the entity lexicon, words outside them, half the sequences at character level).

Each model, and the same model untrained, is then fine-tuned on:
- ChnSentiCorp (`finetune classify`; the shared CSV split 4:1 by row), 2 epochs, median of
  `--seeds` seeds, dev accuracy;
- CMRC 2018 (`finetune cmrc`, trial file as train, scored on the official dev file with the
  CMRC metric), 2 epochs, one seed.
There is no Chinese NER set in the shared data; `finetune ner --format char-bio` is tested on
synthetic sentences only.

    .venv/bin/python bench/chinese_masking.py [--minutes 30] [--work DIR] [--json OUT]
        [--segmenter jieba|rjieba] [--limit N (a dry run: N examples per fine-tuning)]
        [--senti-train N (ChnSentiCorp on a random N of its training reviews)]

The run takes about 2.5 hours on 2 cores. Rerun with the same `--work` to continue after an
interruption: the shards, finished pretraining runs and finished fine-tunings are reused.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import tempfile
from pathlib import Path

from measure import SHARED, use_threads
from sst2_transfer import scratch
from time_to_quality import fitted_steps, schedule_sets

import bertforge
from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.shards import MANIFEST
from bertforge.finetuning.job import RESULTS_FILE
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import train_tokenizer
from bertforge.training.loggers import read_metrics

RECIPE = "bert-mini"
MASKINGS = ("token", "whole_word", "knowledge")
_TITLE = re.compile(r'<doc [^>]*title="([^"]+)"')


def corpus(work: Path) -> tuple[Path, Path]:
    """The pretraining text (documents separated by blank lines) and the title lexicon."""
    wiki = (SHARED / "corpus" / "zh" / "zhwiki_AA_wiki_00.txt").read_text(encoding="utf-8")
    docs, titles, doc = [], [], []
    for line in wiki.splitlines():
        if m := _TITLE.match(line):
            titles.append(m.group(1))
        elif line.startswith("</doc"):
            docs.append("\n".join(doc[1:]))  # the first line repeats the title
            doc = []
        elif line.strip():
            doc.append(line)
    trial = json.loads((SHARED / "squad-format" / "cmrc2018" / "cmrc2018_trial.json").read_text())
    docs += [p["context"] for a in trial["data"] for p in a["paragraphs"]]
    text, lexicon = work / "zh.txt", work / "titles.txt"
    text.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    lexicon.write_text("\n".join(t for t in titles if len(t) > 1) + "\n", encoding="utf-8")
    return text, lexicon


def sets(args: argparse.Namespace, mode: str, steps: int) -> list[str]:
    return [
        f"masking.mode={mode}",
        *schedule_sets(steps, args.lr, 128, 32, 8),
        "objectives.mlm=1",
        "objectives.nsp=1",
    ]


def finetune(task: str, model: Path, data: Path, out: Path, **options: object) -> list[dict]:
    """One `bertforge.finetune` run's dev records; a finished run in `out` is reused."""
    if not (out / RESULTS_FILE).exists():
        shutil.rmtree(out, ignore_errors=True)
        bertforge.finetune(task, model, data, out, **options)
    return [r for r in read_metrics(out) if r["split"] == "dev"]


def pretrained(args: argparse.Namespace, data: Path, mode: str) -> dict:
    """Pretrain with one masking for `--minutes`; a finished run in `--work` is reused."""
    run = args.work / mode
    if not (run / "hf" / "config.json").exists():
        for stale in (run, args.work / f"ft-{mode}"):  # an unfinished run starts over
            shutil.rmtree(stale, ignore_errors=True)
        steps = fitted_steps(RECIPE, data, lambda n: sets(args, mode, n), args.minutes)
        bertforge.pretrain(data, run, load_recipe(RECIPE, sets(args, mode, steps)))
    steps = load_recipe(run / "recipe.toml").train.max_steps
    evals = [r for r in read_metrics(run) if r["split"] == "eval"]
    return {"steps": steps, "eval": evals[-1], "hf": str(run / "hf")}


def downstream(model: Path, args: argparse.Namespace, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    reviews = SHARED / "corpus" / "zh" / "ChnSentiCorp_htl_all.csv"
    header, *rows = reviews.read_text(encoding="utf-8-sig").splitlines()
    rows = [r for r in rows if r.split(",", 1)[1].strip()]  # one review in the file is empty
    split = {"train": [r for i, r in enumerate(rows) if i % 5], "dev": rows[::5]}
    run = "senti"
    if args.senti_train:  # a random subset (the file is sorted by label)
        run = f"senti{args.senti_train}"
        split["train"] = random.Random(0).sample(split["train"], args.senti_train)
    split = {f"{run}-train": split["train"], "senti-dev": split["dev"]}
    for name, part in split.items():
        (work / f"{name}.csv").write_text("\n".join([header, *part]) + "\n", "utf-8")
    limit = {"max_train_examples": args.limit, "max_eval_examples": args.limit}
    senti = [
        finetune("classify", model, work, work / f"{run}-{seed}",
                 train_file=f"{run}-train.csv", dev_file="senti-dev.csv",
                 text_column="review", epochs=2, lr=1e-4, seed=seed,
                 **limit)[-1]["accuracy"]
        for seed in args.seeds
    ]  # fmt: skip
    cmrc = finetune("cmrc", model, SHARED / "squad-format" / "cmrc2018", work / "cmrc",
                    train_file="cmrc2018_trial.json", epochs=2, lr=1e-4, max_length=384,
                    **limit)[-1]  # fmt: skip
    return {
        "chnsenticorp_acc": statistics.median(senti),
        "chnsenticorp_runs": senti,
        "cmrc_f1": cmrc["f1"],
        "cmrc_em": cmrc["exact_match"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--segmenter", default="jieba", help="build-data's word segmenter.")
    ap.add_argument("--limit", type=int, help="Fine-tune and score on N examples (a dry run).")
    ap.add_argument(
        "--senti-train", type=int, help="Train ChnSentiCorp on a random N of its training rows."
    )
    ap.add_argument("--work", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.work = args.work or Path(tempfile.mkdtemp(prefix="zh-masking-"))
    args.work.mkdir(parents=True, exist_ok=True)
    use_threads()
    data = args.work / "data"
    if not (data / MANIFEST).exists():  # built once: a rerun continues on the same shards
        text, lexicon = corpus(args.work)
        tok = train_tokenizer([text], "wordpiece", 8000)
        cfg = BuildConfig(objective="nsp", max_seq_len=128, eval_fraction=0.02,
                          segmenter=args.segmenter, lexicon=str(lexicon))  # fmt: skip
        build_data(tok, [text], data, cfg, workers=2)
    rows: dict[str, dict] = {}
    for mode in MASKINGS:
        rows[mode] = pretrained(args, data, mode)
        rows[mode].update(downstream(Path(rows[mode]["hf"]), args, args.work / f"ft-{mode}"))
        print(mode, json.dumps({k: v for k, v in rows[mode].items() if k != "eval"}))
    untrained = scratch(Path(rows["token"]["hf"]), args.work / "no-pretraining")
    rows["no pretraining"] = downstream(untrained, args, args.work / "ft-none")
    print(json.dumps(rows, indent=1))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
