"""`bertforge train-tokenizer`: a WordPiece (BERT), byte-level BPE (RoBERTa) or SentencePiece
Unigram (ALBERT) vocabulary."""

from __future__ import annotations

from pathlib import Path

import typer

from bertforge.tokenization import train_tokenizer as train


def train_tokenizer(
    kind: str = typer.Option(
        "wordpiece",
        "--kind",
        help="wordpiece (BERT), bpe (RoBERTa) or unigram (ALBERT: SentencePiece, spiece.model).",
    ),
    vocab_size: int = typer.Option(30522, "--vocab-size"),
    inputs: list[Path] = typer.Option(..., "--input", "-i", help="Text files or directories."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to save the tokenizer."),
    lowercase: bool | None = typer.Option(
        None,
        "--lowercase/--cased",
        help="Default: lowercase for wordpiece and unigram, cased for bpe.",
    ),
    min_frequency: int = typer.Option(
        2, "--min-frequency", min=1, help="wordpiece and bpe only (unigram ignores it)."
    ),
    limit_alphabet: int | None = typer.Option(
        None,
        "--limit-alphabet",
        min=1,
        help="wordpiece: initial characters kept (default: the 1000 most frequent plus every "
        "CJK character seen --min-frequency times, one token each as in bert-base-chinese).",
    ),
) -> None:
    """Train a tokenizer on text files and save it in HF format."""
    tok = train(
        [str(p) for p in inputs],
        kind=kind,
        vocab_size=vocab_size,
        lowercase=lowercase,
        min_frequency=min_frequency,
        limit_alphabet=limit_alphabet,
        show_progress=True,
    )
    tok.save_pretrained(output)
    typer.echo(f"saved {kind} tokenizer with {tok.vocab_size} tokens to {output}", err=True)
