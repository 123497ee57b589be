"""Attention kernels beyond SDPA on a padded batch: `flex_attention` with block-sparse masks,
and `varlen_attn` on the unpadded stream (CUDA). `Encoder.attention_backend` picks one.

- sdpa (default): SDPA on the padded layout, or on one padded sequence per packed document
  (`unpad.py`); sliding windows over long inputs run in blocks (`masks.WindowBlocks`).
- flex: `torch.nn.attention.flex_attention` with a `BlockMask` built once per forward from
  each token's sequence and column: blocks that no query of theirs may see are skipped, so a
  sliding window costs T x W and packed documents cost the sum of their squares, and on the
  unpadded stream nothing is re-padded (the whole batch is one sequence of N rows that
  attend within their group). PyTorch 2.13 runs it forward-only on CPU; compiled, it is the
  fused kernel (eager flex is the dense reference math).
- varlen: `torch.nn.attention.varlen.varlen_attn` on the unpadded stream with `cu_seqlens`
  (flash attention, CUDA, fp16/bf16): no padding at all, windows through `window_size`.

Neither fused kernel drops attention probabilities out: training through them needs
`attention_probs_dropout_prob = 0` (ModernBERT's default), and is refused otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
from torch.nn.attention.varlen import varlen_attn

from bertforge.config import EncoderConfig
from bertforge.errors import ConfigError, DataError

BACKENDS = ("sdpa", "flex", "varlen")


def check_backend(config: EncoderConfig, backend: str) -> None:
    """Refuse, in one line, a backend this encoder cannot run."""
    if backend not in BACKENDS:
        raise ConfigError(f"attention backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend != "sdpa" and config.position in ("relative", "disentangled"):
        raise ConfigError(
            f"attention backend {backend!r}: {config.position} positions add a score per "
            "(query, key) that this kernel does not take; use sdpa"
        )


@dataclass(frozen=True)
class VarlenSequences:
    """The unpadded stream as `varlen_attn` reads it: sequence s holds the stream rows
    cu_seqlens[s] .. cu_seqlens[s + 1] - 1; `window`: |i - j| <= window, or None."""

    cu_seqlens: torch.Tensor  # (S + 1,) int32
    longest: int
    window: int | None


def flex_masks(
    config: EncoderConfig,
    group: torch.Tensor,  # (B, T) int64: the sequence of each token; 0 = padding
    column: torch.Tensor,  # (B, T) int64: each token's position in its padded input row
) -> dict[str, BlockMask]:
    """One `BlockMask` per layer type. A token sees the tokens of its own group; a padding
    query (group 0) sees every real token (as SDPA's padding mask lets it); a sliding-window
    layer adds |column_i - column_j| <= window."""
    B, T = group.shape

    def same_group(b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor):
        key = group[b, kv]
        return (key > 0) & ((group[b, q] == key) | (group[b, q] == 0))

    masks = {"full_attention": create_block_mask(same_group, B, None, T, T, device=group.device)}
    window = config.window
    if window is not None:

        def local(b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor):
            near = (column[b, q] - column[b, kv]).abs() <= window
            return same_group(b, h, q, kv) & near

        masks["sliding_attention"] = create_block_mask(local, B, None, T, T, device=group.device)
    return masks


def sequence_bounds(group: torch.Tensor, column: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(N,) stream rows' sequences and columns -> cu_seqlens (S + 1,) int32 and the longest
    sequence. `varlen_attn` reads each sequence as one run of rows at consecutive positions,
    which padding inside a row (an attention mask such as 1 1 0 1) breaks: refused, not
    silently windowed or attended apart."""
    runs, sizes = torch.unique_consecutive(group, return_counts=True)
    same = group[1:] == group[:-1]
    gapless = bool((column[1:] - column[:-1])[same].eq(1).all())
    if runs.numel() != int(group.max()) + 1 or not gapless:
        raise DataError(
            "attention_mask has padding between the tokens of a row, which the varlen kernel "
            "cannot attend across: pad on the right, or use the sdpa or flex backend"
        )
    cu_seqlens = torch.zeros(len(sizes) + 1, dtype=torch.int32, device=group.device)
    cu_seqlens[1:] = torch.cumsum(sizes, 0)
    return cu_seqlens, int(sizes.max())


def varlen_masks(
    config: EncoderConfig, cu_seqlens: torch.Tensor, longest: int
) -> dict[str, VarlenSequences]:
    masks = {"full_attention": VarlenSequences(cu_seqlens, longest, None)}
    if config.window is not None:
        masks["sliding_attention"] = VarlenSequences(cu_seqlens, longest, config.window)
    return masks


@cache
def _compiled_flex() -> Callable[..., torch.Tensor]:
    # Static shapes: PyTorch 2.13's CPU flex template fails to build with dynamic ones. A new
    # shape compiles again; the unpadded stream's bucketed lengths keep the shapes few.
    return torch.compile(flex_attention, dynamic=False)


def flex(
    q: torch.Tensor,  # (B, nh, T, d)
    k: torch.Tensor,
    v: torch.Tensor,
    mask: BlockMask,
) -> torch.Tensor:  # (B, nh, T, d)
    """The compiled kernel, or the plain call inside a graph being compiled already."""
    kernel = flex_attention if torch.compiler.is_compiling() else _compiled_flex()
    return kernel(q, k, v, block_mask=mask)


def varlen(
    q: torch.Tensor,  # (1, nh, N, d): the stream as one sequence
    k: torch.Tensor,
    v: torch.Tensor,
    sequences: VarlenSequences,
) -> torch.Tensor:  # (1, nh, N, d)
    def rows(x: torch.Tensor) -> torch.Tensor:  # (1, nh, N, d) -> (N, nh, d)
        return x[0].transpose(0, 1).contiguous()

    s = sequences
    window = (-1, -1) if s.window is None else (s.window, s.window)
    y = varlen_attn(
        rows(q),
        rows(k),
        rows(v),
        s.cu_seqlens,
        s.cu_seqlens,
        s.longest,
        s.longest,
        window_size=window,
    )  # (N, nh, d)
    return y.transpose(0, 1)[None]


def refuse_dropout(backend: str, dropout_p: float) -> None:
    if dropout_p > 0:
        raise ConfigError(
            f"attention backend {backend!r} has no attention dropout but the model has "
            f"attention_probs_dropout_prob={dropout_p}: set it to 0 or use sdpa"
        )
