"""`bertforge info DIR`: what a checkpoint directory holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from bertforge.config import EncoderConfig
from bertforge.errors import TokenizerError
from bertforge.interop.hf import load_checkpoint
from bertforge.tokenization import Tokenizer


def describe(path: Path) -> dict[str, Any]:
    ckpt = load_checkpoint(path)
    cfg = ckpt.config
    params: dict[str, int] = {}
    for key, tensor in ckpt.state.items():
        part = key.split(".", 1)[0]
        params[part] = params.get(part, 0) + tensor.numel()
    info: dict[str, Any] = {
        "path": str(path),
        "family": cfg.model_type,
        "parts": sorted(ckpt.parts),
        "parameters": sum(params.values()),
        "parameters_by_part": params,
        "layers": cfg.num_hidden_layers,
        "hidden_size": cfg.hidden_size,
        "attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "vocab_size": cfg.vocab_size,
        "max_positions": cfg.max_length,
        "positions": cfg.position
        + (f" (clipped at +-{cfg.max_relative_position})" if cfg.position == "relative" else ""),
        "blocks_layout": f"{cfg.norm_placement}-LN, {cfg.feed_forward} feed-forward",
        "attention": _attention(cfg),
        "embedding_size": cfg.embedding_dim,
        "blocks": cfg.num_blocks,  # fewer than layers when shared (ALBERT)
        "dtypes": sorted({str(t.dtype).removeprefix("torch.") for t in ckpt.state.values()}),
    }
    try:
        tok = Tokenizer.from_pretrained(path)
        info["tokenizer"] = {"kind": tok.kind, "vocab_size": tok.vocab_size}
    except TokenizerError as e:
        info["tokenizer"] = f"none ({e})"
    return info


def _attention(cfg: EncoderConfig) -> str:
    """'global', or how many layers look through a sliding window of how many tokens."""
    if cfg.window is None:
        return "global"
    local = cfg.layer_types.count("sliding_attention")
    return (
        f"{cfg.num_hidden_layers - local} global + {local} sliding-window layers "
        f"(window {cfg.local_attention} tokens)"
    )


def info(
    path: Path = typer.Argument(..., help="HF-format checkpoint directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show family, size, layers, vocabulary and heads of a checkpoint."""
    d = describe(path)
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    for key, value in d.items():
        if key == "parameters":
            value = f"{value:,} ({value / 1e6:.1f}M)"
        elif key == "parameters_by_part":
            value = ", ".join(f"{k} {v:,}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        typer.echo(f"{key.replace('_', ' '):<20} {value}")
