"""`embed`, `similarity`, `fill-mask`: use a checkpoint without writing any code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from bertforge import inference
from bertforge.architectures import PreTrainingModel
from bertforge.atomic import atomic_path
from bertforge.cli.common import device, load_tokenizer
from bertforge.errors import DataError
from bertforge.interop.sentence_transformers import Pooling, read_pooling
from bertforge.models import Encoder
from bertforge.progress import progress_bar
from bertforge.textio import STDIN, read_lines
from bertforge.tokenization import Tokenizer

MODEL = typer.Option(..., "--model", "-m", help="HF-format checkpoint directory.")
TOKENIZER = typer.Option(None, "--tokenizer", help="Tokenizer directory (default: --model).")
POOLING = typer.Option(
    None,
    "--pooling",
    help="cls | mean (mean of real tokens); default: the checkpoint's sentence-transformers "
    "pooling, else mean.",
)
NORMALIZE = typer.Option(
    None,
    "--normalize/--no-normalize",
    help="L2-normalise each vector; default: as the checkpoint's sentence-transformers modules.",
)
DEVICE = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto.")


def _load_encoder(model: Path, tokenizer: Path | None, dev: str) -> tuple[Encoder, Tokenizer]:
    enc = Encoder.from_pretrained(model).to(device(dev))
    return enc, load_tokenizer(model, tokenizer, enc.config)


def _pooling(
    model: Path, mode: str | None, normalize: bool | None, max_length: int | None = None
) -> Pooling:
    """The checkpoint's sentence-transformers pooling (else mean, unnormalised), with the
    flags given on top."""
    if mode is not None and mode not in inference.POOLINGS:
        raise DataError(f"unknown --pooling {mode!r}; choose cls or mean")
    return (read_pooling(model) or Pooling()).override(mode, normalize, max_length)


def embed(
    texts: str = typer.Argument(STDIN, help="Text file, one text per line ('-' = stdin)."),
    model: Path = MODEL,
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the (N, H) .npy."),
    pooling: str | None = POOLING,
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    max_length: int | None = typer.Option(None, "--max-length", min=2),
    normalize: bool | None = NORMALIZE,
    tokenizer: Path | None = TOKENIZER,
    dev: str = DEVICE,
) -> None:
    """Embed every line of a file into one row of a float32 .npy matrix."""
    how = _pooling(model, pooling, normalize, max_length)
    lines = read_lines(texts)
    enc, tok = _load_encoder(model, tokenizer, dev)
    with progress_bar() as bar:
        task = bar.add_task("embed", total=len(lines), tokens=0)

        def advance(rows: int, tokens: int) -> None:
            bar.update(task, advance=rows, tokens=bar.tasks[task].fields["tokens"] + tokens)

        vectors = inference.embed(
            enc,
            tok,
            lines,
            pooling=how.mode,
            batch_size=batch_size,
            max_length=how.max_length,
            normalize=how.normalize,
            on_batch=advance,
        )
    with atomic_path(output) as tmp, open(tmp, "wb") as f:
        np.save(f, vectors)
    typer.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {output}", err=True)


def similarity(
    text_a: str = typer.Argument(..., help="First text."),
    text_b: str = typer.Argument(..., help="Second text."),
    model: Path = MODEL,
    pooling: str | None = POOLING,
    tokenizer: Path | None = TOKENIZER,
    dev: str = DEVICE,
) -> None:
    """Print the cosine similarity of two texts' embeddings."""
    how = _pooling(model, pooling, None)
    enc, tok = _load_encoder(model, tokenizer, dev)
    a, b = inference.embed(enc, tok, [text_a, text_b], pooling=how.mode, max_length=how.max_length)
    typer.echo(f"{inference.cosine(a, b):.4f}")


def fill_mask(
    text: str = typer.Argument(..., help="Text with one or more mask tokens, e.g. [MASK]."),
    model: Path = MODEL,
    top_k: int = typer.Option(5, "--top-k", min=1),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per mask."),
    tokenizer: Path | None = TOKENIZER,
    dev: str = DEVICE,
) -> None:
    """Predict the masked tokens of a text with the checkpoint's MLM head."""
    lm = PreTrainingModel.from_pretrained(model).to(device(dev))
    tok = load_tokenizer(model, tokenizer, lm.config)
    for i, preds in enumerate(inference.fill_mask(lm, tok, text, top_k=top_k)):
        if as_json:
            typer.echo(json.dumps({"mask": i, "predictions": [p.__dict__ for p in preds]}))
            continue
        typer.echo(f"mask {i}:")
        for p in preds:
            typer.echo(f"  {p.score:7.4f}  {p.token:<15} {p.sequence}")
