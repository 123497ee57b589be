"""A small random BERT config, a perturbed transformers model and a padded pair batch, shared
by the parity tests (imported by module name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import torch
import transformers

SMALL = {
    "vocab_size": 1000,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 64,
}


def hf_model(cls: type, **extra: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = cls(transformers.BertConfig(**SMALL, **extra)).eval()
    # Random init leaves biases and LayerNorms at 0/1; perturb them so a swapped key shows.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def batch(vocab: int = SMALL["vocab_size"]) -> dict[str, torch.Tensor]:
    """(3, 12) ids with two padded rows and a second segment from position 6."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, 4:] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
