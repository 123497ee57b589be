"""`build_data` end to end: no text lost on the shared English corpus (the `build-data`
command itself: tests/cli/test_data_cli.py).

The full-corpus run (~95 MB, about 50 s on 2 cores) is marked `acceptance` (`make
acceptance`); both skip when the shared datasets are absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.readers import read_documents, resolve_inputs
from bertforge.data.sentences import split_sentences
from bertforge.data.shards import SPLITS, ShardedDataset
from bertforge.tokenization import Tokenizer


def direct_counts(files: list[Path], tok: Tokenizer) -> tuple[list[int], list[int]]:
    """Per document: tokens and non-empty sentences, tokenized straight by the backend."""
    tokens, sentences = [], []
    for doc in read_documents(files, skip_bad_utf8=True):
        sents = [s for p in doc for s in split_sentences(p)]
        lens = [len(e.ids) for e in tok.backend.encode_batch(sents, add_special_tokens=False)]
        tokens.append(sum(lens))
        sentences.append(sum(n > 0 for n in lens))
    return tokens, sentences


def check_no_text_dropped(out: Path, files: list[Path], tok: Tokenizer) -> dict:
    """Every token of every document with >= 2 sentences is in an instance; others counted."""
    tokens, sentences = np.array(direct_counts(files, tok))
    used = sentences >= 2
    c = json.loads((out / "manifest.json").read_text())["counts"]
    assert c["documents"] == len(tokens) and c["sentences"] == sentences.sum()
    assert c["source_tokens"] == tokens[used].sum()
    assert (c["skipped_short_docs"], c["skipped_tokens"]) == ((~used).sum(), tokens[~used].sum())
    own = borrowed = 0
    for split in SPLITS:
        for ix in [ShardedDataset(out, split, verify=False).rows]:
            text_a, text_b = ix[:, 1] - 2, ix[:, 2] - 1  # [CLS] A [SEP] | B [SEP]
            own += int(text_a.sum() + text_b[ix[:, 3] == 0].sum())
            borrowed += int(text_b[ix[:, 3] == 1].sum())
    # A segments and IsNext B segments hold each source token once, plus the pieces reused
    # before a stranded last piece; random-next B segments are copies from other documents.
    assert own == c["source_tokens"] + c["reused_tokens"] and borrowed == c["borrowed_tokens"]
    assert c["reused_tokens"] < 0.05 * c["source_tokens"]
    return c


def shared_slice(shared: Path) -> list[Path]:
    """About 1.5 MB: one Wikipedia file, a CRLF book and a Latin-1 book."""
    names = ("enwiki-wikiextractor/AA_wiki_00.gz", "gutenberg-extra/pg11.txt",
             "gutenberg/chesterton-ball.txt")  # fmt: skip
    return [shared / "corpus" / name for name in names]


def test_no_text_dropped_on_a_shared_slice(
    shared_data: Path, minilm_path: Path, tmp_path: Path
) -> None:
    tok = Tokenizer.from_pretrained(minilm_path)
    files = shared_slice(shared_data)
    config = BuildConfig(skip_bad_utf8=True, eval_fraction=0.05)
    build_data(tok, files, tmp_path / "nsp", config, workers=2)
    c = check_no_text_dropped(tmp_path / "nsp", files, tok)
    assert c["bad_utf8_lines"] > 0 and abs(c["labels"]["1"] / c["instances"] - 0.5) < 0.03
    # `single` keeps every token of every document exactly once: compare the token multisets.
    single = BuildConfig(objective="single", skip_bad_utf8=True, eval_fraction=0.05)
    build_data(tok, files, tmp_path / "single", single, workers=2)
    got = np.zeros(tok.vocab_size, dtype=np.int64)
    for split in SPLITS:
        ds = ShardedDataset(tmp_path / "single", split)
        for i in range(len(ds)):
            got += np.bincount(ds[i].tokens[1:-1], minlength=tok.vocab_size)
    want = np.zeros(tok.vocab_size, dtype=np.int64)
    for doc in read_documents(files, skip_bad_utf8=True):
        sents = [s for p in doc for s in split_sentences(p)]
        for e in tok.backend.encode_batch(sents, add_special_tokens=False):
            want += np.bincount(np.array(e.ids, dtype=np.int64), minlength=tok.vocab_size)
    assert np.array_equal(got, want)


# Peak memory, measured in a fresh process: its own peak plus each worker's.
BUILD_SCRIPT = """
import json, sys
from bertforge.data.builder import BuildConfig, build_data
from bertforge.tokenization import Tokenizer
r = build_data(Tokenizer.from_pretrained(sys.argv[1]), sys.argv[3:], sys.argv[2],
               BuildConfig(skip_bad_utf8=True), workers=2, force=True)
print(json.dumps({"seconds": r.seconds, "main": r.peak_rss_bytes,
                  "worker": r.peak_worker_rss_bytes, "bytes": r.manifest["counts"]["bytes_in"]}))
"""


@pytest.mark.acceptance
def test_shared_english_corpus(shared_data: Path, minilm_path: Path, tmp_path: Path) -> None:
    """Acceptance: wiki + gutenberg + gutenberg-extra (~95 MB) with 2 workers, seq-128 NSP."""
    corpus = shared_data / "corpus"
    inputs = [corpus / d for d in ("enwiki-wikiextractor", "gutenberg", "gutenberg-extra")]
    done = subprocess.run(
        [sys.executable, "-c", BUILD_SCRIPT, minilm_path, tmp_path, *inputs],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stats = json.loads(done.stdout)
    peak = stats["main"] + 2 * stats["worker"]
    print(
        f"\nbuild-data: {stats['bytes'] / 1e6:.1f} MB in {stats['seconds']:.1f} s = "
        f"{stats['bytes'] / 1e6 / stats['seconds']:.2f} MB/s; peak RSS {stats['main'] / 2**20:.0f}"
        f" MiB main + 2 x {stats['worker'] / 2**20:.0f} MiB workers = {peak / 2**20:.0f} MiB"
    )
    assert peak < 1.5 * 2**30
    c = check_no_text_dropped(
        tmp_path, resolve_inputs(inputs), Tokenizer.from_pretrained(minilm_path)
    )
    assert c["bytes_in"] > 90e6 and c["instances"] > 200_000
