"""`build_data`: raw text -> shards, streaming, with tokenization in worker processes.

The main process reads documents and groups them into chunks; workers split sentences and
tokenize whole chunks with the fast tokenizer's batch API (`workers.py`); the main process
turns the results, in chunk order, into instances (`instances.py`) and shards (`shards.py`).
Memory does not grow with the corpus: documents stream, at most 2 * workers chunks are in
flight, the random-next reservoir is bounded and shards are flushed every
`shard_size_tokens` tokens.

Determinism: the output is a pure function of the inputs, the tokenizer and the parameters
(seed included). It does not depend on `workers`: chunks are cut the same way whatever the
worker count, results are consumed in chunk order, and chunk k draws from its own RNG seeded
by (seed, k). One module of some 350 lines: the pipeline (chunking, the worker pool, ordered
consumption, the writers and the manifest written last) is one flow, read top to bottom.
"""

from __future__ import annotations

import hashlib
import logging
import random
import resource
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np

from bertforge.data.instances import OBJECTIVES, PAIR_OBJECTIVES, SplitMaker, TokenDoc
from bertforge.data.readers import DOC_FORMATS, ReadStats, read_documents, resolve_inputs, text_size
from bertforge.data.shards import (
    FORMAT_VERSION,
    MANIFEST,
    SPLITS,
    Layout,
    ShardWriter,
    read_manifest,
    remove_build,
    token_dtype,
    write_manifest,
)
from bertforge.data.workers import SentenceEncoder, chunked, results, worker_pool
from bertforge.errors import ConfigError, DataError, TokenizerError
from bertforge.progress import bytes_progress_bar
from bertforge.tokenization import Tokenizer
from bertforge.tokenization.segmenters import Lexicon, get_segmenter

logger = logging.getLogger(__name__)

DEFAULT_SHARD_TOKENS = 1 << 24


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines the output (the worker count does not)."""

    objective: str = "nsp"
    max_seq_len: int = 128
    seed: int = 0
    short_seq_prob: float = 0.1
    doc_format: str = "blank-line"
    jsonl_field: str = "text"
    eval_fraction: float = 0.01
    shard_size_tokens: int = DEFAULT_SHARD_TOKENS
    skip_bad_utf8: bool = False
    dupe_factor: int = 1
    segmenter: str = "none"  # word segmenter for whole-word masking (tokenization/segmenters)
    lexicon: str | None = None  # entities (one per line) for knowledge masking
    jsonl_entities: str | None = None  # JSONL field of [start, end] entity spans, the same

    def validate(self) -> None:
        get_segmenter(self.segmenter)  # unknown or not installed: fail before reading text
        if (self.lexicon or self.jsonl_entities) and self.segmenter == "none":
            raise ConfigError(
                "a lexicon or entity spans mark entities among a segmenter's words; pass a "
                "segmenter too (--segmenter jieba)"
            )
        if self.lexicon is not None:
            Lexicon(self.lexicon)  # missing, empty or not UTF-8: say so now
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective {self.objective!r}; use one of {', '.join(OBJECTIVES)}")
        if self.doc_format not in DOC_FORMATS:
            raise ConfigError(
                f"doc format {self.doc_format!r}; use one of {', '.join(DOC_FORMATS)}"
            )
        for name, value, low in (
            ("max_seq_len", self.max_seq_len, 8),
            ("seed", self.seed, 0),
            ("dupe_factor", self.dupe_factor, 1),
            ("shard_size_tokens", self.shard_size_tokens, 1),
        ):
            if value < low:
                raise ConfigError(f"{name} {value}; use at least {low}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ConfigError(f"short_seq_prob {self.short_seq_prob}; use a value in [0, 1]")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"eval_fraction {self.eval_fraction}; use a value in [0, 1)")
        if self.objective == "full-sentences" and self.dupe_factor != 1:
            raise ConfigError(
                "dupe_factor > 1 repeats identical full-sentences packs; masking is dynamic, "
                "so use 1 and train for more epochs"
            )


@dataclass
class BuildResult:
    directory: Path
    manifest: dict[str, Any]
    up_to_date: bool = False  # an existing build with the same parameters was kept
    seconds: float = 0.0
    peak_rss_bytes: int = 0  # this process
    peak_worker_rss_bytes: int = 0  # the largest finished child process (a worker)


_M64 = (1 << 64) - 1


def _unit_hash(seed: int, i: int) -> float:
    """A uniform number in [0, 1) from (seed, i): splitmix64."""
    z = (i + (seed + 1) * 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return (z ^ (z >> 31)) / 2.0**64


def build_data(
    tokenizer: Tokenizer,
    inputs: Sequence[str | Path],
    output: str | Path,
    config: BuildConfig | None = None,
    *,
    workers: int = 0,
    force: bool = False,
    progress: bool = False,
) -> BuildResult:
    """Build shards in `output` from text `inputs`; see the module docstring.

    An existing build with the same parameters is kept (`up_to_date`) unless `force`; one with
    other parameters is an error unless `force`; a crashed build (no valid manifest) is removed.
    """
    cfg = config or BuildConfig()
    cfg.validate()
    files = resolve_inputs(inputs)
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise DataError(f"--output '{out}' is a file; pass a directory")
    params = _params(tokenizer, files, cfg)
    try:
        existing = read_manifest(out)
    except DataError:
        existing = None
    if existing is not None and not force:
        flat = {**params, **params["build"], "build": None}
        was = {**existing, **(existing.get("build") or {}), "build": None}
        differ = [k for k in flat if was.get(k) != flat[k]]
        if not differ:
            logger.info("'%s' is up to date (same inputs and parameters); --force rebuilds", out)
            return BuildResult(out, existing, up_to_date=True)
        raise DataError(
            f"'{out}' holds data built with other {', '.join(differ)}; pass --force to rebuild "
            "it or choose another --output"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # from here on the directory reads as incomplete
    removed = remove_build(out)
    if removed and existing is None:
        logger.warning("removed %d files of an incomplete build in '%s'; rebuilding", removed, out)
    start = time.perf_counter()
    try:
        manifest = _build(tokenizer, files, out, cfg, params, workers, progress)
    except OSError as e:  # writing shards: disk full, a file size limit (reads raise DataError)
        remove_build(out)
        raise DataError(
            f"could not write the shards in '{out}': {e.strerror or e}; nothing was kept, "
            "free space and build again"
        ) from None
    except BaseException:
        remove_build(out)
        raise
    result = BuildResult(out, manifest, seconds=time.perf_counter() - start)
    result.peak_rss_bytes, result.peak_worker_rss_bytes = _peak_rss()
    c = manifest["counts"]
    logger.info(
        "built %d instances, %d tokens from %.1f MB in %.1f s (%.2f MB/s, %d workers); "
        "peak RSS %.0f MiB main, %.0f MiB largest worker",
        c["instances"], c["tokens"], c["bytes_in"] / 1e6, result.seconds,
        c["bytes_in"] / 1e6 / max(result.seconds, 1e-9), workers,
        result.peak_rss_bytes / 2**20, result.peak_worker_rss_bytes / 2**20,
    )  # fmt: skip
    return result


def _peak_rss() -> tuple[int, int]:
    """Peak resident memory of this process and of its largest finished child, in bytes."""
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit


def _params(tokenizer: Tokenizer, files: list[Path], cfg: BuildConfig) -> dict[str, Any]:
    """What a build depends on; an existing build with equal params is up to date."""
    build = {k: v for k, v in asdict(cfg).items() if k not in _TOP_LEVEL}
    build["inputs"] = [
        {"path": str(f.resolve()), "bytes": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns}
        for f in files
    ]
    if cfg.lexicon is not None:  # what the entities are, not only where they were read
        build["lexicon_sha256"] = hashlib.sha256(Path(cfg.lexicon).read_bytes()).hexdigest()
    top = {k: getattr(cfg, k) for k in _TOP_LEVEL}
    return {**top, "tokenizer_fingerprint": tokenizer.fingerprint(), "build": build}


_TOP_LEVEL = ("objective", "max_seq_len", "seed", "short_seq_prob")


def _build(
    tokenizer: Tokenizer,
    files: list[Path],
    out: Path,
    cfg: BuildConfig,
    params: dict[str, Any],
    workers: int,
    progress: bool,
) -> dict[str, Any]:
    layout = Layout.from_backend(tokenizer.backend)
    pair = cfg.objective in PAIR_OBJECTIVES
    budget = cfg.max_seq_len - (layout.pair_specials if pair else layout.single_specials)
    if budget < 4:
        raise ConfigError(f"max_seq_len {cfg.max_seq_len} leaves {budget} tokens of text; raise it")
    if cfg.objective == "full-sentences" and tokenizer.sep_token_id is None:
        raise TokenizerError("full-sentences needs a separator token; the tokenizer has none")
    dtype = token_dtype(tokenizer.vocab_size)
    numbers, entries = count(), []
    segmenter = get_segmenter(cfg.segmenter)
    lexicon = None if cfg.lexicon is None else Lexicon(cfg.lexicon)
    specials = None if segmenter is None else sorted(tokenizer.special_ids)
    writers = {
        name: ShardWriter(out, name, layout, dtype, cfg.shard_size_tokens, cfg.max_seq_len,
                          numbers, entries, specials)
        for name in SPLITS
    }  # fmt: skip
    splits = {
        name: SplitMaker(cfg.objective, budget, cfg.short_seq_prob, cfg.dupe_factor,
                         tokenizer.sep_token_id, writer.add)
        for name, writer in writers.items()
    }  # fmt: skip
    marked = cfg.jsonl_entities is not None  # entity spans ride in the text as marks
    encoder = SentenceEncoder(tokenizer.backend, segmenter, lexicon, marked)
    stats, cuts = ReadStats(), deque()
    docs = read_documents(
        files, doc_format=cfg.doc_format, jsonl_field=cfg.jsonl_field,
        jsonl_entities=cfg.jsonl_entities, skip_bad_utf8=cfg.skip_bad_utf8, stats=stats,
    )  # fmt: skip
    doc_id = sentences = 0
    with (
        worker_pool(workers, encoder, budget // 2 if pair else budget) as pool,
        bytes_progress_bar(disable=not progress) as bar,
    ):
        task = bar.add_task("build-data", total=sum(map(text_size, files)), tokens=0)
        for k, (ids, pieces, doc_pieces, doc_sentences) in enumerate(
            results(chunked(docs, stats, cuts), pool, workers)
        ):
            n_docs, read = cuts.popleft()
            rng = random.Random(cfg.seed << 32 | k)  # per chunk: independent of scheduling
            bounds = np.concatenate(([0], np.cumsum(pieces))).tolist()
            p = 0
            for d in range(n_docs):
                n, base = int(doc_pieces[d]), bounds[p]
                doc_bounds = [b - base for b in bounds[p : p + n + 1]]
                doc = TokenDoc(doc_id, ids[base : bounds[p + n]], doc_bounds, int(doc_sentences[d]))
                held_out = _unit_hash(cfg.seed, doc_id) < cfg.eval_fraction
                splits["eval" if held_out else "train"].add(doc, rng)
                p, doc_id = p + n, doc_id + 1
            sentences += int(doc_sentences.sum())
            bar.update(task, completed=read, tokens=sum(w.tokens for w in writers.values()))
    for name in SPLITS:
        splits[name].finish()
        writers[name].close()
    counts = {
        "documents": doc_id,
        "sentences": sentences,
        "instances": sum(w.instances for w in writers.values()),
        "tokens": sum(w.tokens for w in writers.values()),
        "bytes_in": stats.bytes,
        **_sums(splits.values(), ("skipped_short_docs", "skipped_tokens", "source_tokens")),
        **_sums([s.maker.counts for s in splits.values()], _INSTANCE_COUNTS),
        "bad_utf8_lines": stats.bad_utf8_lines,
        "labels": _sums([s.maker.counts.labels for s in splits.values()], None),
    }
    _check_usable(counts, cfg, files)
    if cfg.eval_fraction > 0 and not writers["eval"].instances:
        logger.warning(
            "no eval instances: none of %d documents drew the eval fraction %g; pass a larger "
            "--eval-fraction or more text", doc_id, cfg.eval_fraction,
        )  # fmt: skip
    special_ids = {r: getattr(tokenizer, f"{r}_token_id") for r in ("cls", "sep", "pad", "mask")}
    manifest = {
        "format_version": FORMAT_VERSION,
        **params,
        "tokenizer_kind": tokenizer.kind,
        "vocab_size": tokenizer.vocab_size,
        "token_dtype": dtype.name,
        "special_ids": special_ids,
        "layout": layout.to_json(),
        "word_starts": segmenter is not None,  # shards hold words-*.bin
        # ... with knowledge-masking units
        "unit_starts": lexicon is not None or cfg.jsonl_entities is not None,
        "shards": entries,
        "counts": counts,
    }
    # A copy of the tokenizer makes the directory self-contained: `pretrain` reads it from
    # here, and its fingerprint is the one in the manifest.
    tokenizer.save_pretrained(out / TOKENIZER_DIR)
    write_manifest(out, manifest)
    return manifest


TOKENIZER_DIR = "tokenizer"
_INSTANCE_COUNTS = ("random_next_fallbacks", "borrowed_tokens", "reused_tokens", "separator_tokens")


def _sums(parts: Any, keys: tuple[str, ...] | None) -> dict[str, int]:
    """Totals of attributes `keys` over `parts`, or of all keys when `parts` are dicts."""
    if keys is None:
        total: dict[str, int] = {}
        for part in parts:
            for key, n in part.items():
                total[str(key)] = total.get(str(key), 0) + n
        return dict(sorted(total.items()))
    return {key: sum(getattr(part, key) for part in parts) for key in keys}


def _check_usable(counts: dict[str, Any], cfg: BuildConfig, files: list[Path]) -> None:
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    names = ", ".join(f"'{f}'" for f in files[:3]) + more
    if counts["instances"]:
        if counts["skipped_short_docs"]:
            logger.info(
                "skipped %d of %d documents (%d tokens) with too few sentences for %s",
                counts["skipped_short_docs"], counts["documents"], counts["skipped_tokens"],
                cfg.objective,
            )  # fmt: skip
        return
    if not counts["sentences"]:
        raise DataError(f"empty corpus: no text in {names}; check the files and --doc-format")
    raise DataError(
        f"all {counts['documents']} documents in {names} are shorter than two sentences, so "
        f"{cfg.objective} has no sentence pairs; check --doc-format (blank-line: blank lines "
        "end documents) or use --objective single"
    )
