"""`make bench` / `make bench-quick`: every main job, bertforge beside its peer, one table.

Each section is one of the scripts beside this file, run in a fresh interpreter on the same
threads (one after the other, never concurrently), writing its raw JSON; this driver turns
those into rows (`table.Row`), prints the table, and writes `bench/results/<date>-<host>.json`
(`-quick.json` for the quick run), a PNG of the ratios, and the table in `bench/README.md`.

    .venv/bin/python bench/run.py [--quick] [--sections pretrain,finetune,...] [--no-readme]
        [--add-to bench/results/<earlier>.json]

`--quick` (about 3 minutes on 2 cores): BERT-mini pretraining in fp32 and bf16, an SST-2
fine-tuning step, inference on 1,000 texts, ONNX serving on 500, and `build-data` on 10 MB.
The full run (about an hour) adds every family and BERT-base, every GLUE task (and
ModernBERT-mini's fine-tuning step), a whole SST-2 epoch against the `Trainer`, ModernBERT-mini
on 512 to 8,192-token inputs (`long`), `build-data` on 80 MB, and a 10-minute
time-to-quality race.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from table import Row, markdown, write

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEER = "transformers"
# Targets from the benchmark issue: ratios bertforge / peer (> 1 better).
TARGET_PRETRAIN = {"bert-mini": 3.0, "bert-base": 1.3}
TARGET_OTHER_FAMILY = 2.0
FAMILY_MODELS = (
    "bert-mini,roberta-mini,albert-mini,electra-small,distilbert-mini,distilbert,modernbert-mini,"
    "deberta-mini"
)


def run_script(script: str, args: list[str], work: Path) -> dict:
    """Run `bench/<script>` with `--json`, echo its output, return the JSON."""
    out = work / f"{Path(script).stem}-{len(list(work.iterdir()))}.json"
    cmd = [sys.executable, str(HERE / script), *args, "--json", str(out)]
    print(f"$ {' '.join(Path(c).name if c == sys.executable else c for c in cmd)}", flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO)
    print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    return json.loads(out.read_text())


def pretrain_rows(work: Path, quick: bool) -> list[Row]:
    if quick:
        results = run_script("pretrain_step.py", ["--models", "bert-mini", "--steps", "5"], work)
    else:
        results = run_script("pretrain_step.py", ["--models", FAMILY_MODELS], work)
        base = ["--models", "bert-base", "--precisions", "bf16", "--steps", "4"]
        results |= run_script("pretrain_step.py", base, work)
    rows = []
    for key, r in results.items():
        model, precision = key.split("/")
        ours, peer = r["bertforge"], r["transformers"]
        target = TARGET_PRETRAIN.get(model, TARGET_OTHER_FAMILY)
        rows.append(
            Row(
                f"pretrain step {model} {precision}", "tok/s", ours["tokens_per_s"],
                peer["tokens_per_s"], PEER, limit=ours["tokens_per_s"] / ours["mfu"],
                target=target,
            )
        )  # fmt: skip
        rows.append(
            Row(
                f"pretrain peak RSS {model} {precision}", "MiB", ours["peak_mib"],
                peer["peak_mib"], PEER, higher_is_better=False,
                target=2.0 if model == "bert-mini" else None,
            )
        )  # fmt: skip
    return rows


def finetune_rows(work: Path, quick: bool) -> list[Row]:
    tasks = "sst2" if quick else "sst2,mrpc,rte,stsb"
    steps = "10" if quick else "20"
    results = run_script("finetune_step.py", ["--tasks", tasks, "--steps", steps], work)
    rows = step_rows(results, "", 1.5)
    if quick:
        return rows
    modern = ["--tasks", "sst2,rte", "--steps", steps, "--model", "modernbert-mini"]
    rows += step_rows(run_script("finetune_step.py", modern, work), "modernbert-mini ", 2.0)
    epoch = run_script("finetune_trainer.py", ["--max-train-examples", "0", "--epochs", "1"], work)
    ours, peer = epoch["results"]["bertforge"], epoch["results"]["transformers"]
    rows.append(
        Row("SST-2 epoch end to end", "s", ours["wall_s"], peer["wall_s"], "transformers Trainer",
            higher_is_better=False, target=1.5)
    )  # fmt: skip
    rows.append(
        Row("SST-2 epoch peak RSS", "MiB", ours["peak_mib"], peer["peak_mib"],
            "transformers Trainer", higher_is_better=False)
    )  # fmt: skip
    return rows


def step_rows(results: dict, model: str, target: float) -> list[Row]:
    rows = []
    for task, r in results["tasks"].items():
        ours, peer = r["bertforge"], r["transformers"]
        limit = results["gemm_peak_fp32"] / r["flops_per_token"]
        rows.append(
            Row(
                f"fine-tune step {model}{task} ({r['mean_tokens']:.0f} tok/row)", "real tok/s",
                ours["tokens_per_s"], peer["tokens_per_s"], PEER, limit=limit, target=target,
            )
        )  # fmt: skip
    return rows


def long_input_rows(work: Path, quick: bool) -> list[Row]:
    """ModernBERT-mini on one long sequence: time per token and peak memory."""
    lengths = "2048" if quick else "512,2048,8192"
    r = run_script("long_inputs.py", ["--lengths", lengths, "--reps", "1" if quick else "3"], work)
    rows = []
    for key, row in r["rows"].items():
        task, length = key.split("/")
        ours, peer = row["bertforge"], row["transformers"]
        job = "embed" if task == "embed" else "fine-tune step"
        rows.append(
            Row(f"modernbert-mini {job} at {length} tokens", "us/token", ours["us_per_token"],
                peer["us_per_token"], PEER, higher_is_better=False)
        )  # fmt: skip
        rows.append(
            Row(f"modernbert-mini {job} at {length} tokens peak RSS", "MiB", ours["peak_mib"],
                peer["peak_mib"], PEER, higher_is_better=False)
        )  # fmt: skip
        flex = row.get("bertforge-flex", {})
        if "us_per_token" in flex:  # the compiled flex kernel (embedding only)
            rows.append(
                Row(f"modernbert-mini {job} (flex) at {length} tokens", "us/token",
                    flex["us_per_token"], peer["us_per_token"], PEER, higher_is_better=False)
            )  # fmt: skip
    return rows


def inference_rows(work: Path, quick: bool) -> list[Row]:
    args = ["--texts", "1000", "--requests", "100", "--repeat", "1"] if quick else []
    r = run_script("inference.py", args, work)
    e = r["embeddings"]
    ours, limit = e["bertforge"]["texts_per_s"], e["limit_texts_per_s"]
    rows = [
        Row("embed, vs input order", "texts/s", ours, e["transformers_input_order"]["texts_per_s"],
            "transformers, input order", limit=limit, target=2.0),
        Row("embed, vs sorted batches", "texts/s", ours, e["transformers_sorted"]["texts_per_s"],
            "transformers, sorted", limit=limit, target=1.2),
    ]  # fmt: skip
    for job, peer_name in (("fill_mask", "fill-mask"), ("classify", "text-classification")):
        for q in ("p50", "p99"):
            rows.append(
                Row(
                    f"{job.replace('_', '-')} latency batch 1 {q}", "ms",
                    r[job]["bertforge"][f"{q}_ms"], r[job]["transformers"][f"{q}_ms"],
                    f"transformers pipeline('{peer_name}')", higher_is_better=False,
                )
            )  # fmt: skip
    return rows


def onnx_rows(work: Path, quick: bool) -> list[Row]:
    args = ["--texts", "500", "--requests", "50", "--repeat", "1"] if quick else []
    r = run_script("onnx_serving.py", args, work)
    ours, peer = r["onnxruntime"], r["pytorch_eager"]
    eager = "PyTorch eager (same graph)"
    rows = [Row("ONNX embed, batch 32", "texts/s", ours["texts_per_s"], peer["texts_per_s"], eager)]
    for q in ("p50", "p99"):
        rows.append(
            Row(f"ONNX embed latency batch 1 {q}", "ms", ours[f"{q}_ms"], peer[f"{q}_ms"], eager,
                higher_is_better=False)
        )  # fmt: skip
    return rows


def data_rows(work: Path, quick: bool) -> list[Row]:
    r = run_script("build_data.py", ["--sizes", "10" if quick else "10,80"], work)
    limit, google = r["tokenizer_alone_mb_per_s"], r["google"]
    peer = "google-research/bert (recorded)"
    rows = []
    for size, b in r["builds"].items():
        rows.append(
            Row(f"build-data {size} MB", "MB/s", b["mb_per_s"], google["mb_per_s"], peer,
                limit=limit, of_limit_target=0.5)
        )  # fmt: skip
        rows.append(
            Row(f"build-data peak RSS {size} MB", "MiB", b["rss_mib"],
                google["mib_per_mb"] * b["mb"], peer, higher_is_better=False)
        )  # fmt: skip
    return rows


def quality_rows(work: Path, quick: bool, minutes: float = 10) -> list[Row]:
    if quick:
        return []
    mark = f"{minutes:g}"
    r = run_script("time_to_quality.py", ["--marks", mark, "--work", str(work / "ttq")], work)
    ours, peer = r["bertforge"]["at_marks"][mark], r["transformers"]["at_marks"][mark]
    rows = [Row(f"MLM accuracy after {mark} min (BERT-mini)", "acc", ours, peer, PEER)]
    reached = r.get("bertforge_reaches_peer_final_at_s")
    if reached is not None:
        rows.append(
            Row(f"minutes to the peer's {mark}-min accuracy", "min", reached / 60, minutes, PEER,
                higher_is_better=False)
        )  # fmt: skip
    return rows


SECTIONS: dict[str, Callable[[Path, bool], list[Row]]] = {
    "pretrain": pretrain_rows,
    "finetune": finetune_rows,
    "long": long_input_rows,
    "inference": inference_rows,
    "onnx": onnx_rows,
    "data": data_rows,
    "quality": quality_rows,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the 3-minute subset")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--no-readme", action="store_true", help="leave bench/README.md alone")
    ap.add_argument(
        "--add-to",
        type=Path,
        help="an earlier results JSON: its rows, with this run's replacing those of the same "
        "name (rerun some sections of a full run)",
    )
    args = ap.parse_args()
    names = args.sections.split(",")
    if unknown := sorted(set(names) - set(SECTIONS)):
        choices = ", ".join(SECTIONS)
        raise SystemExit(f"unknown section(s) {', '.join(unknown)}; choose from {choices}")
    start = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            rows += SECTIONS[name](Path(tmp), args.quick)
    title = "make bench-quick" if args.quick else "make bench"
    if args.add_to is not None:
        earlier = json.loads(args.add_to.read_text())
        fresh = {r.name for r in rows}
        fields = set(Row.__dataclass_fields__)
        kept = [Row(**{k: v for k, v in r.items() if k in fields}) for r in earlier["rows"]]
        rows = [r for r in kept if r.name not in fresh] + rows
        title = f"{earlier['title']}, then `--sections {args.sections}`"
    readme = None if args.no_readme else REPO / "bench" / "README.md"
    path = write(rows, args.out, readme, title, REPO, "-quick" if args.quick else "")
    print()
    print(markdown(rows))
    print(f"\n{len(rows)} rows in {time.perf_counter() - start:.0f} s -> {path}")


if __name__ == "__main__":
    main()
