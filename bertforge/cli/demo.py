"""`make demo`: raw text -> tokenizer -> shards -> a pretrained tiny BERT -> fill-mask.

With no `--corpus`, the text is English prose that ships with Python itself (its documentation
topics and standard-library docstrings), so the demo runs anywhere without downloads.

The recipe is tuned for a few minutes on two CPU cores (measured in docs/design.md, "Pretraining
that learns in minutes"): MLM only on packed 32-token sequences (at 128 tokens a tiny model
spends its first ~10M tokens predicting frequent words; at 32 its attention is local from the
start), batch 128, peak lr 3e-3, no dropout, fp32 (faster than bf16 autocast at this size).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from rich.console import Console

from bertforge import inference
from bertforge.api import pretrain
from bertforge.architectures import PreTrainingModel
from bertforge.atomic import write_text
from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.embedded import write_embedded_corpus
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer, train_tokenizer
from bertforge.training.loggers import read_metrics
from bertforge.training.plots import UNIGRAM

# Prompts in the style of Python's documentation, each with the one word a reader would fill
# in; none is a sentence of the corpus. The list was fixed before any run of the model it
# scores: the demo reports its hit rate over all of them, whichever come out right.
PROMPTS = {
    "the [MASK] statement is used to leave a loop early.": "break",
    "a list is a mutable [MASK] of objects.": "sequence",
    "the dictionary maps each key to a [MASK].": "value",
    "the loop runs once for each [MASK] in the list.": "item",
    "the module must be [MASK] before its functions can be used.": "imported",
    "a subclass inherits the methods of its base [MASK].": "class",
    "strings are [MASK] sequences of unicode characters.": "immutable",
    "the number of items in a container is returned by the built-in [MASK] function.": "len",
    "a typeerror is raised when an argument has the wrong [MASK].": "type",
    "the file is opened for reading and [MASK].": "writing",
    "if no value is given, the [MASK] value is used.": "default",
    "the function returns none if the [MASK] is empty.": "list",
    "keyword arguments are passed by [MASK].": "name",
    "a method is a function that belongs to an [MASK].": "object",
}


def demo(
    corpus: list[Path] = typer.Option(
        [], "--corpus", envvar="CORPUS", help="Text files/dirs (default: Python's own docs)."
    ),
    output: Path = typer.Option(Path("runs/demo"), "--output", "-o", help="Work directory."),
    max_steps: int = typer.Option(3000, "--max-steps", help="Pretraining steps."),
    seq_len: int = typer.Option(32, "--seq-len", help="Tokens per training sequence."),
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
    build = BuildConfig(objective="full-sentences", max_seq_len=seq_len, eval_fraction=0.05)
    build_data(tokenizer, inputs, data, build, workers=workers, force=True, progress=True)
    recipe = load_recipe(
        None,
        [
            "preset=tiny",
            f"model.max_position_embeddings={max(seq_len, 64)}",
            "model.hidden_dropout_prob=0.0",
            "model.attention_probs_dropout_prob=0.0",
            f"train.max_steps={max_steps}",
            "train.batch_size=128",
            "train.micro_batch_size=128",
            "train.lr=3e-3",
            f"train.warmup_steps={max(1, max_steps // 10)}",
            "train.precision=fp32",
            f"train.save_every={max_steps}",
            f"train.eval_every={max(1, max_steps // 5)}",
            "train.eval_batches=20",
            "train.log_every=20",
            "objectives.mlm=1",
        ],
    )
    run = output / "run"
    shutil.rmtree(run, ignore_errors=True)  # the demo's own run directory: start over
    exported = pretrain(data, run, recipe).model
    model = PreTrainingModel.from_pretrained(exported)
    tok = Tokenizer.from_pretrained(exported)
    console.print(f"\nexported model: {exported}")
    hits, answers = 0, []
    for text, expected in PROMPTS.items():
        preds = inference.fill_mask(model, tok, text, top_k=5)[0]
        hits += any(p.token == expected for p in preds)
        answers.append({"text": text, "expected": expected, "top5": [p.token for p in preds]})
        shown = ", ".join(
            f"[bold green]{p.token}[/]" if p.token == expected else p.token for p in preds
        )
        console.print(f"  {text}\n    -> {shown}   (expected: {expected})")
    rate = hits / len(PROMPTS)
    console.print(
        f"\nthe expected word is in the top 5 for {hits} of {len(PROMPTS)} prompts "
        f"(hit rate {rate:.0%})"
    )
    evals = [r for r in read_metrics(run) if r.get("split") == "eval"]
    if evals and UNIGRAM in evals[-1]:
        last = evals[-1]
        console.print(
            f"held-out MLM accuracy {last['mlm_acc']:.3f} after {last['step']} steps; always "
            f"answering the most frequent word scores {last[UNIGRAM]:.3f}"
        )
    console.print(f"\nloss curve: {run / 'loss.png'}\nmetrics:    {run / 'metrics.jsonl'}")
    summary = {"hits": hits, "hit_rate": rate, "prompts": answers, **(evals[-1] if evals else {})}
    write_text(run / "demo.json", json.dumps(summary) + "\n")
