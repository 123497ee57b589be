"""Which keys each query may see, per attention pattern, built once per forward.

Boolean masks, True = may attend, in the shapes SDPA broadcasts: padding alone is (B, 1, 1, T)
(one row for every query); a sliding window adds the band |i - j| <= w, (B, 1, T, T); packed
documents (`document_ids`) the blocks of each document, (B, 1, T, T). A full-attention layer
over an unpadded batch needs no mask at all (None), which lets SDPA take its fastest kernel.
A window wider than the input is no window: its layers share the full mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask

from bertforge.config import EncoderConfig
from bertforge.models.kernels import VarlenSequences
from bertforge.models.unpad import Packing


def band(length: int, window: int, device: torch.device) -> torch.Tensor:  # (T, T) bool
    """Query i sees key j when |i - j| <= window."""
    pos = torch.arange(length, device=device)
    return (pos[None, :] - pos[:, None]).abs() <= window


def padding_mask(attention_mask: torch.Tensor | None, traced: bool) -> torch.Tensor | None:
    """(B, T) 1/0 -> (B, 1, 1, T) bool, or None when nothing is padded.

    Eager skips the mask when nothing is padded; a traced graph (export, compile) cannot
    branch on the mask's values, so it always applies it, with a row per query for ONNX's
    Attention op (opset 23) in onnxruntime.
    """
    if attention_mask is None or not (traced or not bool(attention_mask.all())):
        return None
    mask = attention_mask[:, None, None, :].bool()  # (B, 1, 1, T): keys a query may see
    if traced:
        mask = mask.expand(-1, -1, mask.shape[-1], -1)  # (B, 1, T, T)
    return mask


def document_mask(document_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) document numbers (0 = padding) -> (B, 1, T, T): a token sees its own document's
    tokens; a padding query sees every real token (a softmax over no key is undefined)."""
    same = document_ids[:, None, :, None] == document_ids[:, None, None, :]
    padding_query = (document_ids == 0)[:, None, :, None]
    return (same | padding_query) & (document_ids > 0)[:, None, None, :]


def document_positions(document_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, T) int64: each token's position inside its document (from 0)."""
    index = torch.arange(document_ids.shape[1], device=document_ids.device).expand_as(document_ids)
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    return index - torch.cummax(index * starts, dim=1).values


# A sliding window over inputs longer than this many windows runs in blocks (`WindowBlocks`).
BLOCKED_FROM = 6


@dataclass(frozen=True)
class WindowBlocks:
    """A sliding window as blocks of `window` queries: block k (queries kw .. kw + w - 1)
    meets the keys kw - w .. kw + 2w - 1, so scores take T x 3w memory, not T x T. `mask`
    (B, nb, w, 3w) (B: 1 without padding) says which of a block's keys each query sees."""

    window: int
    mask: torch.Tensor


def window_blocks(
    window: int, length: int, attention_mask: torch.Tensor | None, device: torch.device
) -> WindowBlocks:
    blocks = -(-length // window)
    query = torch.arange(blocks * window, device=device).view(blocks, window, 1)  # (nb, w, 1)
    start = torch.arange(blocks, device=device).view(blocks, 1, 1) * window - window
    key = start + torch.arange(3 * window, device=device)  # (nb, 1, 3w)
    sees = ((query - key).abs() <= window) & (key >= 0) & (key < length)  # (nb, w, 3w)
    if attention_mask is None or bool(attention_mask.all()):
        return WindowBlocks(window, sees[None])
    real = F.pad(attention_mask.bool(), (window, blocks * window - length + window))
    real_keys = real.unfold(1, 3 * window, window)  # (B, nb, 3w)
    return WindowBlocks(window, sees[None] & real_keys[:, :, None, :])


def layer_masks(
    config: EncoderConfig,
    attention_mask: torch.Tensor | None,
    length: int,
    device: torch.device,
    document_ids: torch.Tensor | None = None,
    blocked: bool = True,
) -> dict[str, torch.Tensor | WindowBlocks | None]:
    """The mask of each layer type for a (B, T) batch (of packed documents: by document).
    A window over a long input comes as `WindowBlocks` when `blocked` (not when the caller
    wants the (T, T) probabilities, nor for traced graphs or relative positions)."""
    traced = torch.compiler.is_compiling()
    if document_ids is not None:
        full = document_mask(document_ids)
    else:
        full = padding_mask(attention_mask, traced)
    masks: dict[str, torch.Tensor | WindowBlocks | None] = {"full_attention": full}
    window = config.window
    if window is not None:
        if length - 1 <= window and not traced:
            masks["sliding_attention"] = full
        elif (
            blocked
            and length > BLOCKED_FROM * window
            and not traced
            and document_ids is None
            and config.position not in ("relative", "disentangled")
        ):
            masks["sliding_attention"] = window_blocks(window, length, attention_mask, device)
        else:
            local = band(length, window, device)[None, None]  # (1, 1, T, T)
            masks["sliding_attention"] = local if full is None else local & full
    return masks


@dataclass(frozen=True)
class AttentionInputs:
    """What every layer's attention reads for one batch, by the layer's type."""

    # SDPA's boolean masks, blocked windows, or the flex / varlen kernels' (`kernels.py`)
    masks: dict[str, torch.Tensor | WindowBlocks | BlockMask | VarlenSequences | None]
    rotary: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None  # cos, sin (T, D)
    packing: Packing | None = None  # the unpadded stream's rows (`unpad.py`)
    # DeBERTa: the distance embeddings (R, H) and the (T, T) index into them.
    distances: tuple[torch.Tensor, torch.Tensor] | None = None
