"""`bertforge train-tokenizer`: a WordPiece (BERT), byte-level BPE (RoBERTa) or SentencePiece
Unigram (ALBERT, DeBERTa) vocabulary; `bertforge extend-vocab`: a checkpoint's vocabulary grown by a
domain's words."""

from __future__ import annotations

from pathlib import Path

import typer

from bertforge import api
from bertforge.tokenization import train_tokenizer as train


def train_tokenizer(
    kind: str = typer.Option(
        "wordpiece",
        "--kind",
        help="wordpiece (BERT), bpe (RoBERTa) or unigram (SentencePiece: ALBERT's spiece.model "
        "or, with --style deberta, DeBERTa's spm.model).",
    ),
    style: str = typer.Option(
        "albert",
        "--style",
        help="unigram only: albert (AlbertTokenizer's pipeline) or deberta "
        "(DebertaV2Tokenizer's: cased, [PAD] [UNK] [CLS] [SEP] [MASK]).",
    ),
    vocab_size: int = typer.Option(30522, "--vocab-size"),
    inputs: list[Path] = typer.Option(..., "--input", "-i", help="Text files or directories."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to save the tokenizer."),
    lowercase: bool | None = typer.Option(
        None,
        "--lowercase/--cased",
        help="Default: lowercase for wordpiece and unigram (albert), cased for bpe and deberta.",
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
        style=style,
    )
    tok.save_pretrained(output)
    typer.echo(f"saved {kind} tokenizer with {tok.vocab_size} tokens to {output}", err=True)


def extend_vocab(
    model: Path = typer.Option(..., "--model", help="HF checkpoint with its tokenizer."),
    inputs: list[Path] = typer.Option(..., "--input", "-i", help="Domain text: files or dirs."),
    add: int = typer.Option(..., "--add", help="How many words to add."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory of the new checkpoint."),
    min_count: int = typer.Option(2, "--min-count", help="Add only words seen this often."),
) -> None:
    """Add the domain words the tokenizer cuts into the most pieces (x their frequency) as
    whole tokens, each new embedding the mean of its old pieces'; then `pretrain --init`."""
    result = api.extend_vocab(model, inputs, add, output, min_count=min_count)
    typer.echo(
        f"added {len(result.added)} tokens to {result.output}; tokens per word on the input: "
        f"{result.tokens_per_word_before:.3f} -> {result.tokens_per_word_after:.3f}"
    )
