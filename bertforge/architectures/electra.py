"""ELECTRA pretraining (Clark et al., 2020): a small generator (an MLM) fills the masked
positions with samples, and the discriminator, sharing its input embeddings, tells for every
token whether it was replaced."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bertforge.architectures.pretraining import PreTrainingModel
from bertforge.config import EncoderConfig
from bertforge.constants import IGNORE_INDEX
from bertforge.errors import ConfigError

SHARED = ("tokens", "segments", "positions", "norm")


def tie_embeddings(generator: PreTrainingModel, discriminator: PreTrainingModel) -> None:
    """Make the generator use the discriminator's token, segment and position tables and their
    LayerNorm (the generator's MLM decoder, tied to its tokens, follows). Each model keeps its
    own E -> H map, since their hidden sizes differ; each still saves as a full checkpoint."""
    g, d = generator.config, discriminator.config
    if (g.vocab_size, g.embedding_dim) != (d.vocab_size, d.embedding_dim):
        raise ConfigError(
            f"shared embeddings need the same vocabulary and embedding size: generator "
            f"{g.vocab_size} x {g.embedding_dim}, discriminator {d.vocab_size} x {d.embedding_dim}"
        )
    for name in SHARED:
        setattr(generator.encoder.embeddings, name, getattr(discriminator.encoder.embeddings, name))


def sample_tokens(logits: torch.Tensor, uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """One token id per row of (M, V) logits, drawn from their softmax (ELECTRA's generator
    samples). Inverse-CDF sampling: one uniform per row and a search in the cumulative
    probabilities, 5x faster on CPU than `torch.multinomial`, which draws V exponentials per
    row. `uniforms` ((M,) in [0, 1)) are those draws; fresh ones from torch's RNG if None."""
    with torch.no_grad():
        cdf = logits.float().softmax(-1).cumsum(-1)  # (M, V)
        if uniforms is None:
            uniforms = torch.rand(cdf.shape[0], device=cdf.device)
        u = uniforms.to(cdf).unsqueeze(-1) * cdf[:, -1:]  # (M, 1)
        return torch.searchsorted(cdf, u).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)  # (M,)


def generator_config(discriminator: EncoderConfig, size: float = 0.25) -> EncoderConfig:
    """The discriminator's shape at `size` times its width (hidden, heads, feed-forward) and
    the same depth, reading the discriminator's embeddings (E) through its own E -> H map.
    The paper's best generators are 1/4 to 1/2 of the discriminator."""
    if not 0 < size <= 1:
        raise ConfigError(f"generator.size={size}; use a fraction in (0, 1], e.g. 0.25")
    heads = max(1, round(discriminator.num_attention_heads * size))
    hidden = heads * discriminator.head_dim  # keeps the head size, so heads divide it
    embedding = discriminator.embedding_dim
    return discriminator.replace(
        hidden_size=hidden,
        num_attention_heads=heads,
        intermediate_size=max(1, round(discriminator.intermediate_size * size)),
        embedding_size=None if embedding == hidden else embedding,
    )


@dataclass
class ElectraOutput:
    mlm_logits: torch.Tensor  # (M, V): the generator's logits at the masked positions
    rtd_logits: torch.Tensor  # (B, T): the discriminator's "replaced" logits
    replaced: torch.Tensor  # (B, T) bool: the discriminator's input differs from the original


class ElectraPreTraining(nn.Module):
    """Generator + discriminator trained together; export each as its own HF model
    (`ElectraForMaskedLM`, `ElectraForPreTraining`)."""

    def __init__(self, discriminator: EncoderConfig, generator_size: float = 0.25) -> None:
        super().__init__()
        self.discriminator = PreTrainingModel(discriminator, heads=("rtd",))
        self.generator = PreTrainingModel(
            generator_config(discriminator, generator_size), heads=("mlm",)
        )
        tie_embeddings(self.generator, self.discriminator)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T): masked as the collator left them
        attention_mask: torch.Tensor,  # (B, T)
        token_type_ids: torch.Tensor,  # (B, T)
        masked_positions: torch.Tensor,  # (B, T) bool: the generator's targets
        mlm_labels: torch.Tensor,  # (B, T): original ids at masked positions, else -100
        sample_uniforms: torch.Tensor | None = None,  # (B, T) in [0, 1): the sampling draws
        document_ids: torch.Tensor | None = None,  # (B, T): packed documents, 0 = padding
    ) -> ElectraOutput:
        gen = self.generator(
            input_ids, attention_mask, token_type_ids, masked_positions, document_ids=document_ids
        )
        # Sampling is not differentiable: the discriminator's loss never reaches the generator.
        # The collator's draws make the samples a function of the examples alone, the same on
        # any number of ranks and after a resume.
        draws = None if sample_uniforms is None else sample_uniforms[masked_positions]  # (M,)
        sampled = sample_tokens(gen.mlm_logits.detach(), draws)  # (M,)
        original = torch.where(mlm_labels != IGNORE_INDEX, mlm_labels, input_ids)  # (B, T)
        corrupted = original.clone()
        corrupted[masked_positions] = sampled
        # A sample that equals the original counts as original (the paper's labelling).
        replaced = corrupted != original  # (B, T)
        disc = self.discriminator(
            corrupted, attention_mask, token_type_ids, document_ids=document_ids
        )
        return ElectraOutput(gen.mlm_logits, disc.rtd_logits, replaced)
