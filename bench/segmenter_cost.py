"""What word segmentation costs `build-data` on Chinese text: MB/s without a segmenter, with
jieba, with its Rust port rjieba, and with rjieba plus a lexicon of entities (knowledge
masking), same workers.

The corpus is the shared Chinese Wikipedia sample (`<doc>` lines dropped) repeated `--copies`
times, tokenized with a Chinese WordPiece vocabulary trained on it. The issue's bar: with the
segmenter, at most 2x slower than without.

    .venv/bin/python bench/segmenter_cost.py [--copies 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

from bertforge.data.builder import BuildConfig, build_data
from bertforge.tokenization import train_tokenizer
from bertforge.tokenization.segmenters import get_segmenter

SHARED = Path(
    os.environ.get("BERTFORGE_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
)


def corpus(work: Path, copies: int) -> Path:
    wiki = SHARED / "corpus" / "zh" / "zhwiki_AA_wiki_00.txt"
    if not wiki.is_file():
        raise SystemExit(f"{wiki} not found (set BERTFORGE_SHARED_DATA)")
    lines = [x for x in wiki.read_text(encoding="utf-8").splitlines() if not x.startswith("<")]
    text = "\n\n".join(lines)
    path = work / "zh.txt"
    path.write_text("\n\n".join([text] * copies), encoding="utf-8")
    return path


def lexicon(text: Path, work: Path) -> Path:
    """2,000 entities: the most frequent pairs of adjacent multi-character jieba words."""
    jieba = get_segmenter("jieba")
    assert jieba is not None
    words = [w for w in jieba(text.read_text(encoding="utf-8")) if len(w) > 1]
    pairs = Counter(a + b for a, b in pairwise(words))
    path = work / "entities.txt"
    path.write_text("\n".join(p for p, _ in pairs.most_common(2000)) + "\n", encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        text = corpus(work, args.copies)
        tok = train_tokenizer([text], "wordpiece", 21128)
        entities = lexicon(text, work)
        mb = text.stat().st_size / 1e6
        rates = {}
        for name, extra in (
            ("no segmenter", {}),
            ("jieba", {"segmenter": "jieba"}),
            ("rjieba", {"segmenter": "rjieba"}),
            ("rjieba + lexicon", {"segmenter": "rjieba", "lexicon": str(entities)}),
        ):
            cfg = BuildConfig(objective="nsp", max_seq_len=128, eval_fraction=0.0, **extra)
            start = time.perf_counter()
            build_data(tok, [text], work / "out", cfg, workers=args.workers, force=True)
            rates[name] = mb / (time.perf_counter() - start)
        jieba = get_segmenter("jieba")
        assert jieba is not None
        start = time.perf_counter()
        for line in text.read_text(encoding="utf-8").splitlines():
            jieba(line)
        alone = mb / (time.perf_counter() - start)
    print(f"build-data nsp seq128 on {mb:.1f} MB of Chinese, {args.workers} workers")
    for name, rate in rates.items():
        slower = rates["no segmenter"] / rate
        print(f"  {name:17s} {rate:6.2f} MB/s  ({slower:.2f}x the time without a segmenter)")
    print(f"  jieba alone       {alone:6.2f} MB/s  (1 process, segmenting only)")


if __name__ == "__main__":
    main()
