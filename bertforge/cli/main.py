"""The `bertforge` command. Each command group lives in its own module; this one wires them
and turns user errors into one line on stderr with exit code 2 (`--debug` for a traceback)."""

from __future__ import annotations

import logging
import os

import click
import typer
from typer.core import TyperGroup

from bertforge.cli import (
    data,
    demo,
    export,
    finetune,
    info,
    pretrain,
    search_demo,
    serve,
    tokenizer,
)
from bertforge.errors import BertforgeError
from bertforge.training.stopping import EXIT_STOPPED, TrainingStopped


class _Group(TyperGroup):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TrainingStopped as e:  # a checkpoint was written: a scheduler may requeue
            typer.echo(str(e), err=True)
            raise typer.Exit(EXIT_STOPPED) from None
        except (BertforgeError, OSError) as e:
            if ctx.meta.get("debug"):
                raise
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Train, fine-tune and serve BERT-family models; HF checkpoints in and out.",
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level."),
) -> None:
    ctx.meta["debug"] = debug or os.environ.get("BERTFORGE_DEBUG") == "1"
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


app.command("info")(info.info)
app.command("embed")(serve.embed)
app.command("similarity")(serve.similarity)
app.command("fill-mask")(serve.fill_mask)
app.command("train-tokenizer")(tokenizer.train_tokenizer)
app.command("extend-vocab")(tokenizer.extend_vocab)
app.command("pretrain")(pretrain.pretrain)
app.command("distill")(pretrain.distill)
app.add_typer(export.app, name="export")
app.command("plot")(pretrain.plot)
app.command("demo")(demo.demo)
app.command("search-demo")(search_demo.search_demo)
app.command("build-data")(data.build_data)
app.add_typer(finetune.app, name="finetune")
app.command("evaluate")(finetune.evaluate)
app.command("predict")(finetune.predict)


def main() -> None:
    app()


if __name__ == "__main__":  # `python -m bertforge.cli.main`, which torchrun launches
    main()
