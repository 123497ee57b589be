"""Transformer blocks: where the LayerNorms sit (`EncoderConfig.norm_placement`).

post (BERT):   h = LN(x + drop(attn(x)));      out = LN(h + drop(ffn(h)))
pre (ModernBERT): h = x + drop(attn(LN(x)));   out = h + ffn(LN(h))   (+ a final LN after the
               last block, in the encoder). The first block has no attention norm: its input
               is the normalised embedding. Dropout follows ModernBERT: the attention rate on
               the attention output, the hidden rate inside the feed-forward, none on the
               residual after it.
"""

from __future__ import annotations

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.models.attention import SelfAttention
from bertforge.models.dropout import Dropout
from bertforge.models.ffn import FEED_FORWARDS
from bertforge.models.masks import AttentionInputs


def layer_norm(config: EncoderConfig) -> nn.LayerNorm:
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.norm_bias)


class PostNormBlock(nn.Module):
    """x -> LN(x + drop(attn(x))) -> LN(h + drop(ffn(h)))."""

    def __init__(self, config: EncoderConfig, index: int) -> None:
        super().__init__()
        self.attn = SelfAttention(config, config.layer_type(index))
        self.attn_norm = layer_norm(config)
        self.ffn = FEED_FORWARDS[config.feed_forward](config)
        self.ffn_norm = layer_norm(config)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, H), or (N, H) real tokens with `inputs.packing`
        inputs: AttentionInputs,
        return_probs: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Everything but attention is position-wise, so it runs on either layout.
        a, probs = self.attn(x, inputs, return_probs)
        h = self.attn_norm(x + self.dropout(a))
        return self.ffn_norm(h + self.dropout(self.ffn(h))), probs


class PreNormBlock(nn.Module):
    """x -> x + drop(attn(LN(x))) -> h + ffn(LN(h))."""

    def __init__(self, config: EncoderConfig, index: int) -> None:
        super().__init__()
        self.attn_norm = layer_norm(config) if index > 0 else None
        self.attn = SelfAttention(config, config.layer_type(index))
        self.attn_dropout = Dropout(config.attention_probs_dropout_prob)
        self.ffn_norm = layer_norm(config)
        self.ffn = FEED_FORWARDS[config.feed_forward](config, config.hidden_dropout_prob)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, H), or (N, H) real tokens with `inputs.packing`
        inputs: AttentionInputs,
        return_probs: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        normed = self.attn_norm(x) if self.attn_norm is not None else x
        a, probs = self.attn(normed, inputs, return_probs)
        h = x + self.attn_dropout(a)
        return h + self.ffn(self.ffn_norm(h)), probs


BLOCKS = {"post": PostNormBlock, "pre": PreNormBlock}
