"""Tiny configs, random transformers models and padded batches shared by the tests (importable
by name: pytest puts `tests/` on sys.path for the conftest beside this file).

`hf_model(family, suffix)` builds `transformers.<Prefix><suffix>` from a tiny config of that
family with every parameter perturbed, so biases and LayerNorms are not at their trivial init
and a swapped key shows in the outputs.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers

from bertforge import EncoderConfig

# Our tiny BERT (fast unit tests).
TINY = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 32,
}

VOCAB = 1000
# The same small shape in each family's transformers config (parity tests).
SMALL = {
    "vocab_size": VOCAB,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 64,
}
HF_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "bert": ("BertConfig", SMALL),
    # RoBERTa: padding id 1, positions offset past it, one token type.
    "roberta": (
        "RobertaConfig",
        {**SMALL, "max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1},
    ),
    # ALBERT: embeddings of 32 lifted to 64; 4 layers running 2 groups of 2 shared blocks.
    "albert": (
        "AlbertConfig",
        {**SMALL, "embedding_size": 32, "num_hidden_layers": 4, "num_hidden_groups": 2,
         "inner_group_num": 2, "hidden_dropout_prob": 0.1},
    ),
    "distilbert": (
        "DistilBertConfig",
        {"vocab_size": VOCAB, "dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 128,
         "max_position_embeddings": 64},
    ),
    "electra": ("ElectraConfig", {**SMALL, "embedding_size": 32}),
    # ModernBERT: 3 layers (global, local, local) with a window of 4 (2 either side) that the
    # 12-token batch really exercises; its special ids moved into the tiny vocabulary.
    "modernbert": (
        "ModernBertConfig",
        {**SMALL, "num_hidden_layers": 3, "intermediate_size": 96, "local_attention": 4,
         "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1,
         "sep_token_id": 2},
    ),
    # DeBERTa-v3's shape: disentangled attention with shared key/query projections over 8 log
    # buckets reaching 16 positions (the 12-token batch crosses into the log part), a
    # LayerNorm'd distance table, no absolute positions, no token types.
    "deberta-v2": (
        "DebertaV2Config",
        {**SMALL, "relative_attention": True, "position_biased_input": False,
         "position_buckets": 8, "max_relative_positions": 16, "pos_att_type": "p2c|c2p",
         "share_att_key": True, "norm_rel_ebd": "layer_norm", "type_vocab_size": 0,
         "layer_norm_eps": 1e-7},
    ),
}  # fmt: skip
# Families whose HF models take no token_type_ids.
NO_TYPES = ("distilbert", "modernbert")
PREFIXES = {
    "bert": "Bert",
    "roberta": "Roberta",
    "albert": "Albert",
    "distilbert": "DistilBert",
    "electra": "Electra",
    "modernbert": "ModernBert",
    "deberta-v2": "DebertaV2",
}


def tiny_config(**overrides: Any) -> EncoderConfig:
    return EncoderConfig(**{**TINY, **overrides})


def hf_config(family: str, **extra: Any) -> Any:
    name, fields = HF_CONFIGS[family]
    return getattr(transformers, name)(**{**fields, **extra})


def hf_model(family: str, suffix: str = "Model", **extra: Any) -> torch.nn.Module:
    torch.manual_seed(0)
    cls = getattr(transformers, PREFIXES[family] + suffix)
    model = cls(hf_config(family, **extra)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def batch(family: str = "bert", vocab: int = VOCAB) -> dict[str, torch.Tensor]:
    """(3, 12) ids with two padded rows (padding = the family's pad id) and a second segment
    from position 6 (all zero types for RoBERTa; none for DistilBERT and ModernBERT)."""
    pad = HF_CONFIGS[family][1].get("pad_token_id", 0)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, 4:] = 0
    ids = ids.masked_fill(mask == 0, pad)
    out = {"input_ids": ids, "attention_mask": mask}
    if family not in NO_TYPES:
        types = torch.zeros_like(ids)
        if family != "roberta":
            types[:, 6:] = 1
        out["token_type_ids"] = types
    return out


def choice_batch(family: str = "bert") -> dict[str, torch.Tensor]:
    """(B=2, C=3, T) built from the (3, T) batch: every example sees the choices reordered."""
    return {k: torch.stack([v, v.flip(0)]) for k, v in batch(family).items()}


def save_mlm_checkpoint(
    family: str, tokenizer: Any, directory: Any, heads: tuple[str, ...] = ("mlm",)
) -> Any:
    """A tiny random `...ForMaskedLM` of `family` (or the class of other `heads`) with
    `tokenizer` saved beside it (the tokenizer class its HF checkpoints name)."""
    from bertforge import FAMILIES, PreTrainingModel
    from bertforge.interop.hf import tokenizer_class

    extra = {"embedding_size": 32} if family in ("albert", "electra") else {}
    config = FAMILIES[family].config(
        "tiny",
        vocab_size=tokenizer.vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=66,
        **extra,
    )
    torch.manual_seed(0)
    PreTrainingModel(config, heads=heads).save_pretrained(directory)
    tokenizer.save_pretrained(directory, tokenizer_class(config, tokenizer))
    return directory
