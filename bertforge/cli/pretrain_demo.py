"""`make demo`: raw text -> tokenizer -> NSP shards -> a pretrained tiny BERT -> fill-mask.

With no `--corpus`, the text is English prose that ships with Python itself (its documentation
topics and standard-library docstrings), so the demo runs anywhere without downloads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from rich.console import Console

from bertforge import inference
from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.embedded import write_embedded_corpus
from bertforge.heads import PreTrainingModel
from bertforge.tokenization import Tokenizer, train_tokenizer
from bertforge.training.loop import pretrain
from bertforge.training.recipe import load_recipe

SENTENCES = (
    "the [MASK] statement is used to leave a loop early.",
    "a function is defined with the [MASK] keyword.",
    "an exception is raised when an [MASK] occurs.",
    "the value of the [MASK] is returned to the caller.",
)


def pretrain_demo(
    corpus: list[Path] = typer.Option(
        [], "--corpus", envvar="CORPUS", help="Text files/dirs (default: Python's own docs)."
    ),
    output: Path = typer.Option(Path("runs/demo"), "--output", "-o", help="Work directory."),
    max_steps: int = typer.Option(1500, "--max-steps", help="Pretraining steps."),
    vocab_size: int = typer.Option(8000, "--vocab-size"),
    workers: int = typer.Option(2, "--workers"),
) -> None:
    """Pretrain a tiny BERT from raw text end to end and show its fill-mask predictions."""
    console = Console()
    console.rule("[bold]bertforge demo: pretraining a tiny BERT from raw text")
    inputs = list(corpus) or [write_embedded_corpus(output / "corpus.txt")]
    console.print(f"corpus: {', '.join(map(str, inputs))}")
    tokenizer = train_tokenizer(inputs, "wordpiece", vocab_size, show_progress=True)
    data = output / "data"
    build_data(tokenizer, inputs, data, BuildConfig(objective="nsp", max_seq_len=128),
               workers=workers, force=True, progress=True)  # fmt: skip
    recipe = load_recipe(
        None,
        [
            "preset=tiny",
            f"train.max_steps={max_steps}",
            "train.batch_size=32",
            "train.micro_batch_size=32",
            "train.lr=1e-3",
            f"train.warmup_steps={max(1, max_steps // 10)}",
            f"train.save_every={max_steps}",
            f"train.eval_every={max(1, max_steps // 5)}",
            "train.eval_batches=5",
            "model.hidden_dropout_prob=0.0",
            "model.attention_probs_dropout_prob=0.0",
        ],
    )
    run = output / "run"
    shutil.rmtree(run, ignore_errors=True)  # the demo's own run directory: start over
    exported = pretrain(recipe, data, run)
    model = PreTrainingModel.from_pretrained(exported)
    tok = Tokenizer.from_pretrained(exported)
    console.print(f"\nexported model: {exported}")
    for text in SENTENCES:
        preds = inference.fill_mask(model, tok, text, top_k=5)[0]
        shown = ", ".join(f"{p.token} ({p.score:.2f})" for p in preds)
        console.print(f"  {text}\n    -> {shown}")
    console.print(f"\nloss curve: {run / 'loss.png'}\nmetrics:    {run / 'metrics.jsonl'}")
