"""The encoder stack: embeddings -> L blocks -> (optional) pooler. Returns hidden states only."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bertforge.config import EncoderConfig
from bertforge.errors import ConfigError, DataError
from bertforge.models.block import BLOCKS, layer_norm
from bertforge.models.disentangled import DistanceEmbeddings
from bertforge.models.embeddings import Embeddings
from bertforge.models.init import init_weights
from bertforge.models.kernels import (
    check_backend,
    flex_masks,
    refuse_dropout,
    sequence_bounds,
    varlen_masks,
)
from bertforge.models.masks import AttentionInputs, document_positions, layer_masks
from bertforge.models.pooler import Pooler
from bertforge.models.rotary import Rotary
from bertforge.models.unpad import Packing
from bertforge.pretrained import Pretrained, TaskMeta


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # (B, T, H)
    pooler_output: torch.Tensor | None = None  # (B, H)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # L + 1 x (B, T, H), embeddings first
    attentions: tuple[torch.Tensor, ...] | None = None  # L x (B, nh, T, T)
    attention_mask: torch.Tensor | None = None  # (B, T) as given: mean pooling reads it


class Encoder(Pretrained, nn.Module):
    """A BERT-family encoder; the variant is chosen by `EncoderConfig`, not by subclassing.

    `layers` holds the distinct blocks; `config.block_order()` says which one each layer runs
    (every layer its own block, or ALBERT's shared groups), so L layers may share 1 block.
    """

    state_prefix = "encoder."  # where its weights sit in the canonical checkpoint namespace

    def __init__(self, config: EncoderConfig, add_pooler: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        block = BLOCKS[config.norm_placement]
        self.layers = nn.ModuleList(block(config, i) for i in range(config.num_blocks))
        self.order = config.block_order()
        # Pre-LN leaves the residual stream unnormalised: one LayerNorm after the last layer.
        self.final_norm = layer_norm(config) if config.norm_placement == "pre" else None
        self.rotary = self._rotary(config) if config.position == "rotary" else None
        # DeBERTa: one table of distance embeddings for every layer.
        self.distances = DistanceEmbeddings(config) if config.position == "disentangled" else None
        self.pooler = Pooler(config.hidden_size) if add_pooler else None
        # Range-checking ids costs one reduction per batch; a training loop that validated its
        # shards may switch it off.
        self.check_inputs = True
        # Unpadded execution (`models/unpad.py`): same values at every real token, zeros at most
        # padding positions (where the padded path leaves values nothing should read). Training
        # loops switch it on; off by default so outputs match `transformers` position for
        # position.
        self.unpad = False
        # The attention kernel (`models/kernels.py`): sdpa, flex or varlen.
        self.attention_backend = "sdpa"
        self.apply(lambda m: init_weights(m, config.initializer_range))

    @staticmethod
    def _rotary(config: EncoderConfig) -> nn.ModuleDict:
        """One table per layer type: full-attention and sliding-window layers may turn at
        different rates (ModernBERT: theta 160,000 and 10,000)."""
        local = config.local_rope_theta or config.rope_theta
        thetas = {"full_attention": config.rope_theta, "sliding_attention": local}
        return nn.ModuleDict({k: Rotary(config.head_dim, theta) for k, theta in thetas.items()})

    @classmethod
    def from_checkpoint(cls, config: EncoderConfig, parts: set[str], meta: TaskMeta) -> Encoder:
        return cls(config, add_pooler="pooler" in parts)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T) 1 = token, 0 = padding
        token_type_ids: torch.Tensor | None = None,  # (B, T)
        position_ids: torch.Tensor | None = None,  # (B, T)
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        document_ids: torch.Tensor | None = None,  # (B, T): packed documents, 0 = padding
    ) -> EncoderOutput:
        """With `document_ids`, each document of a row attends only to itself and counts its
        positions from 0 (packing several documents into one row wastes no padding)."""
        if self.check_inputs:
            self._check_ids(input_ids, token_type_ids, position_ids)
        if document_ids is not None:
            position_ids = document_positions(document_ids) + self.config.position_offset
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, T, H)
        # (T, T) probabilities asked for: no blocked windows
        inputs = self._attention_inputs(
            attention_mask, position_ids, document_ids, x, blocked=not output_attentions
        )
        packing = inputs.packing
        if packing is not None:
            x = packing.unpad(x)  # (N, H)
        padded = packing.pad if packing is not None else lambda t: t
        states = [padded(x)] if output_hidden_states else None
        probs = [] if output_attentions else None
        for index in self.order:
            x, p = self.layers[index](x, inputs, output_attentions)
            if states is not None:
                states.append(padded(x))
            if probs is not None:
                probs.append(p)
        if self.final_norm is not None:
            x = self.final_norm(x)
        x = padded(x)  # (B, T, H)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(states) if states is not None else None,
            attentions=tuple(probs) if probs is not None else None,
            attention_mask=attention_mask,
        )

    def _attention_inputs(
        self,
        attention_mask: torch.Tensor | None,  # (B, T)
        position_ids: torch.Tensor | None,  # (B, T) or None
        document_ids: torch.Tensor | None,  # (B, T) or None
        x: torch.Tensor,  # (B, T, H): the embeddings (for the shape and device)
        blocked: bool,
    ) -> AttentionInputs:
        """What every layer's attention reads, once per forward: the unpadded stream's rows
        (`Packing`, when `unpad`), each layer type's mask in the layout attention runs on
        (the batch's, or one sequence per packed document), rotary tables for those
        positions, DeBERTa's distance table."""
        T, device = x.shape[1], x.device
        if self.attention_backend != "sdpa" and blocked:
            return self._kernel_inputs(attention_mask, position_ids, document_ids, x)
        masks = layer_masks(self.config, attention_mask, T, device, document_ids, blocked=blocked)
        packing = None
        if self.unpad and document_ids is not None:
            packing = Packing.from_documents(document_ids)
            T = packing.documents.length
            masks = layer_masks(self.config, packing.documents.mask, T, device, blocked=blocked)
            position_ids = None  # each document's sequence counts from 0
        elif self.unpad and masks["full_attention"] is not None:
            packing = Packing.from_mask(attention_mask)
        rotary = None
        if self.rotary is not None:
            positions = position_ids if position_ids is not None else torch.arange(T, device=device)
            rotary = {kind: table(positions) for kind, table in self.rotary.items()}
        distances = self.distances(T) if self.distances is not None else None
        return AttentionInputs(masks, rotary, packing, distances)

    def _kernel_inputs(
        self,
        attention_mask: torch.Tensor | None,  # (B, T)
        position_ids: torch.Tensor | None,  # (B, T) or None
        document_ids: torch.Tensor | None,  # (B, T) or None
        x: torch.Tensor,  # (B, T, H)
    ) -> AttentionInputs:
        """The flex or varlen kernel's inputs. Each token's group: its document, or 1 for a
        token and 0 for padding. Unpadded (always, for varlen), attention runs on the stream
        as one sequence whose rows attend within their group; padded (flex), on the batch."""
        B, T = x.shape[:2]
        ids = document_ids if document_ids is not None else attention_mask
        if ids is None:
            ids = torch.ones(B, T, dtype=torch.long, device=x.device)
        columns = torch.arange(T, device=x.device).expand(B, T)
        positions = position_ids if position_ids is not None else columns
        packing = None
        if self.unpad or self.attention_backend == "varlen":
            packing = Packing.for_stream(ids)
            group, _ = packing.groups(ids)  # (N,)
            column = packing.indices % T  # (N,)
            positions = positions.reshape(-1)[packing.indices]  # (N,)
            if self.attention_backend == "varlen":
                masks = varlen_masks(self.config, *sequence_bounds(group, column))
            else:
                masks = flex_masks(self.config, group[None] + 1, column[None])
        else:
            masks = flex_masks(self.config, ids.long(), columns)
        rotary = None
        if self.rotary is not None:
            rotary = {kind: table(positions) for kind, table in self.rotary.items()}
        return AttentionInputs(masks, rotary, packing)

    def _check_ids(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
    ) -> None:
        """Out-of-range ids would fail deep inside an embedding lookup (or, on GPU, with an
        asynchronous device assert); name the tensor and the likely cause instead."""
        cfg = self.config
        if input_ids.dim() != 2:
            raise DataError(f"input_ids must be (batch, seq_len), not {tuple(input_ids.shape)}")
        if position_ids is None and input_ids.shape[1] > cfg.max_length:
            raise DataError(
                f"position_ids out of range: inputs of {input_ids.shape[1]} tokens but the model "
                f"has {cfg.max_length} positions; truncate them (max_length={cfg.max_length})"
            )
        checks = [
            ("input_ids", input_ids, cfg.vocab_size, "the tokenizer does not match the model"),
            ("position_ids", position_ids, cfg.max_position_embeddings, "truncate the inputs"),
        ]
        if self.embeddings.segments is not None:  # a model without token types ignores them
            checks.append(
                ("token_type_ids", token_type_ids, cfg.type_vocab_size, "check type_vocab_size")
            )
        for name, ids, size, hint in checks:
            if ids is None or not ids.numel():
                continue
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= size:
                raise DataError(
                    f"{name} out of range: values span [{lo}, {hi}] but the model has {size} "
                    f"embeddings; {hint}"
                )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def encoder_config(model: nn.Module) -> EncoderConfig:
    """The config of the (first) encoder inside `model`: a task model, an MLM behind a prompt."""
    return next(m.config for m in model.modules() if isinstance(m, Encoder))


def set_attention_backend(model: nn.Module, backend: str) -> None:
    """The attention kernel of every encoder in `model`: sdpa, flex or varlen
    (`models/kernels.py`); refused in one line where an encoder cannot run it."""
    for module in model.modules():
        if isinstance(module, Encoder):
            check_backend(module.config, backend)
            module.attention_backend = backend


def use_attention_kernel(model: nn.Module, backend: str, device: torch.device | str) -> None:
    """`set_attention_backend` for training on `device`: the fused kernels train on CUDA
    only (PyTorch 2.13 runs flex forward-only on CPU) and drop no attention probabilities."""
    if backend == "sdpa":
        return
    if torch.device(device).type != "cuda":
        raise ConfigError(
            f"train.attention={backend!r} trains on CUDA only (flex runs forward-only on CPU, "
            "varlen_attn is a CUDA kernel); use sdpa here"
        )
    set_attention_backend(model, backend)
    refuse_dropout(backend, encoder_config(model).attention_probs_dropout_prob)


def set_unpadded(model: nn.Module, enabled: bool = True) -> None:
    """Switch unpadded execution (`Encoder.unpad`) on or off for every encoder in `model`."""
    for module in model.modules():
        if isinstance(module, Encoder):
            module.unpad = enabled
