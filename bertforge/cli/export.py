"""`export run` (a pretraining run's newest checkpoint as HF; also `export RUN_DIR`) and
`export onnx` (a checkpoint's serving graph for one task)."""

from __future__ import annotations

from pathlib import Path

import click
import typer
from typer.core import TyperGroup

from bertforge.cli.pretrain import export as export_run
from bertforge.onnx_export import OPSET, SERVING, export_onnx


class _ExportGroup(TyperGroup):
    """`bertforge export RUN_DIR ...`, the older form, still means `export run RUN_DIR ...`."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_ExportGroup, no_args_is_help=True, help="Export a run as HF, or a model as ONNX."
)
app.command("run")(export_run)


@app.command("onnx")
def onnx(
    model: Path = typer.Option(..., "--model", help="HF checkpoint directory for the task."),
    task: str = typer.Option(
        ...,
        "--task",
        help=f"{' | '.join(SERVING)}, or the fine-tuning task the model was trained for "
        "(classify, ner, squad, sst2, ...; qa for any span model).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="The .onnx file to write."),
    pooling: str | None = typer.Option(
        None, "--pooling", help="embed: mean or cls (default: the checkpoint's, else mean)."
    ),
    normalize: bool | None = typer.Option(
        None, "--normalize/--no-normalize", help="embed: L2-normalise (default: as saved)."
    ),
    opset: int = typer.Option(OPSET, "--opset"),
) -> None:
    """Export MODEL's graph for TASK (dynamic batch and sequence axes), checked against
    PyTorch with onnxruntime before it is written."""
    path = export_onnx(model, task, output, pooling=pooling, normalize=normalize, opset=opset)
    typer.echo(f"exported {task} graph to {path}")
