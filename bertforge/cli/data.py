"""`bertforge build-data`: raw text -> pretraining shards (see `bertforge.data.builder`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from bertforge.data.builder import DEFAULT_SHARD_TOKENS, BuildConfig
from bertforge.data.builder import build_data as build
from bertforge.data.instances import OBJECTIVES
from bertforge.data.readers import DOC_FORMATS
from bertforge.tokenization import Tokenizer


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def build_data(
    tokenizer: Path = typer.Option(..., "--tokenizer", help="Tokenizer directory."),
    inputs: list[Path] = typer.Option(
        ..., "--input", "-i", help="Text files or directories (*.txt, *.gz, *.jsonl)."
    ),
    more: list[Path] = typer.Argument(
        None,
        help="More inputs, so that `--input corpus/*.gz` takes every file.",
        show_default=False,
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for the shards."),
    objective: str = typer.Option("nsp", "--objective", help=" | ".join(OBJECTIVES)),
    max_seq_len: int = typer.Option(128, "--max-seq-len", help="Tokens per instance, specials in."),
    workers: int = typer.Option(
        _cpus(), "--workers", min=0, help="Tokenizer processes (0/1: none)."
    ),
    seed: int = typer.Option(0, "--seed", min=0),
    short_seq_prob: float = typer.Option(0.1, "--short-seq-prob", help="Share of shorter targets."),
    doc_format: str = typer.Option(
        "blank-line", "--doc-format", help=" | ".join(DOC_FORMATS) + " (wiki and .jsonl: auto)"
    ),
    jsonl_field: str = typer.Option("text", "--jsonl-field", help="Text field of .jsonl records."),
    eval_fraction: float = typer.Option(
        0.01, "--eval-fraction", help="Share of documents held out."
    ),
    shard_size_tokens: int = typer.Option(DEFAULT_SHARD_TOKENS, "--shard-size-tokens"),
    skip_bad_utf8: bool = typer.Option(
        False, "--skip-bad-utf8", help="Replace invalid UTF-8 (with a warning) instead of failing."
    ),
    dupe_factor: int = typer.Option(1, "--dupe-factor", help="Passes over the corpus (nsp/sop)."),
    segmenter: str = typer.Option(
        "none",
        "--segmenter",
        help="Word segmenter for whole-word masking of Chinese: jieba | rjieba (its fast Rust "
        "port) | none | module:function.",
    ),
    lexicon: Path | None = typer.Option(
        None,
        "--lexicon",
        help="Entities, one per line (UTF-8), masked whole by [masking] mode = knowledge.",
    ),
    jsonl_entities: str | None = typer.Option(
        None,
        "--jsonl-entities",
        help="Field of .jsonl records with [[start, end], ...] entity spans (knowledge masking).",
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even if --output is up to date."),
) -> None:
    """Build pretraining shards (NSP, SOP, full-sentences or single) from raw text."""
    config = BuildConfig(
        objective=objective,
        max_seq_len=max_seq_len,
        seed=seed,
        short_seq_prob=short_seq_prob,
        doc_format=doc_format,
        jsonl_field=jsonl_field,
        eval_fraction=eval_fraction,
        shard_size_tokens=shard_size_tokens,
        skip_bad_utf8=skip_bad_utf8,
        dupe_factor=dupe_factor,
        segmenter=segmenter,
        lexicon=None if lexicon is None else str(lexicon),
        jsonl_entities=jsonl_entities,
    )
    config.validate()  # before loading the tokenizer: bad flags fail fast
    tok = Tokenizer.from_pretrained(tokenizer)
    result = build(
        tok,
        [*inputs, *(more or [])],
        output,
        config,
        workers=workers,
        force=force,
        progress=sys.stderr.isatty(),
    )
    if result.up_to_date:
        typer.echo(
            f"{output} is up to date (same inputs and parameters); --force rebuilds", err=True
        )
        return
    c = result.manifest["counts"]
    typer.echo(
        f"built {c['instances']:,} {objective} instances ({c['tokens']:,} tokens, "
        f"{len(result.manifest['shards'])} shards) in {output} from {c['bytes_in'] / 1e6:.1f} MB "
        f"in {result.seconds:.1f} s ({c['bytes_in'] / 1e6 / max(result.seconds, 1e-9):.2f} MB/s); "
        f"skipped {c['skipped_short_docs']:,} short documents; peak RSS "
        f"{result.peak_rss_bytes / 2**20:.0f} MiB + {result.peak_worker_rss_bytes / 2**20:.0f} "
        "MiB per worker",
        err=True,
    )
