"""ELECTRA pretraining (Clark et al., 2020): a small generator (an MLM) fills the masked
positions with samples, and the discriminator, sharing its input embeddings, tells for every
token whether it was replaced.

DeBERTa-v3's gradient-disentangled embedding sharing (GDES, He et al. 2023): the generator
owns the token embeddings; the discriminator reads them through a stop-gradient plus a
zero-initialised delta of its own, so the replaced-token loss never pulls the MLM's
embeddings (the tug-of-war of plain sharing) and trains only the delta."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bertforge.architectures.pretraining import PreTrainingModel
from bertforge.config import EncoderConfig
from bertforge.constants import IGNORE_INDEX
from bertforge.errors import ConfigError

SHARED = ("tokens", "segments", "positions", "norm")
SHARINGS = ("shared", "gdes")


class DeltaEmbedding(nn.Module):
    """GDES: the embeddings of `source` (another model's), no gradient into them, plus a
    zero-initialised `delta` of this model's own: E_D = sg(E_G) + delta."""

    def __init__(self, source: nn.Embedding) -> None:
        super().__init__()
        self.source = source
        self.padding_idx = source.padding_idx
        self.delta = nn.Parameter(torch.zeros_like(source.weight))

    @property
    def weight(self) -> torch.Tensor:  # (V, E): what the discriminator sees, folded
        return self.source.weight.detach() + self.delta

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, E)
        # Two gathers: E_G + delta over the whole vocabulary would be a (V, E) copy a step.
        shared = F.embedding(ids, self.source.weight.detach(), self.padding_idx)
        return shared + F.embedding(ids, self.delta)


def share_gdes(generator: PreTrainingModel, discriminator: PreTrainingModel) -> None:
    """The discriminator's token embeddings become the generator's through a stop-gradient,
    plus its own delta; everything else in both models stays its own."""
    g, d = generator.config, discriminator.config
    if (g.vocab_size, g.embedding_dim) != (d.vocab_size, d.embedding_dim):
        raise ConfigError(
            f"gdes sharing needs the same vocabulary and embedding size: generator "
            f"{g.vocab_size} x {g.embedding_dim}, discriminator {d.vocab_size} x {d.embedding_dim}"
        )
    discriminator.encoder.embeddings.tokens = DeltaEmbedding(generator.encoder.embeddings.tokens)


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


def generator_config(
    discriminator: EncoderConfig, size: float = 0.25, depth: float = 1.0
) -> EncoderConfig:
    """The discriminator's shape at `size` times its width (hidden, heads, feed-forward) and
    `depth` times its layers, reading the discriminator's embeddings (E) through its own
    E -> H map. ELECTRA's best generators are 1/4 to 1/2 as wide at the same depth;
    DeBERTa-v3's is as wide and half as deep."""
    if not 0 < size <= 1:
        raise ConfigError(f"generator.size={size}; use a fraction in (0, 1], e.g. 0.25")
    if not 0 < depth <= 1:
        raise ConfigError(f"generator.depth={depth}; use a fraction in (0, 1], e.g. 0.5")
    layers = max(1, round(discriminator.num_hidden_layers * depth))
    types = discriminator.layer_types[:layers] if discriminator.layer_types else None
    heads = max(1, round(discriminator.num_attention_heads * size))
    hidden = heads * discriminator.head_dim  # keeps the head size, so heads divide it
    embedding = discriminator.embedding_dim
    return discriminator.replace(
        num_hidden_layers=layers,
        layer_types=types,
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
    (`ElectraForMaskedLM`, `ElectraForPreTraining`). `sharing`: "shared" (ELECTRA: both
    train one set of embedding tables) or "gdes" (DeBERTa-v3: `DeltaEmbedding`)."""

    def __init__(
        self,
        discriminator: EncoderConfig,
        generator_size: float = 0.25,
        generator_depth: float = 1.0,
        sharing: str = "shared",
    ) -> None:
        super().__init__()
        if sharing not in SHARINGS:
            raise ConfigError(f"generator.sharing={sharing!r}; choose one of {', '.join(SHARINGS)}")
        self.sharing = sharing
        self.discriminator = PreTrainingModel(discriminator, heads=("rtd",))
        self.generator = PreTrainingModel(
            generator_config(discriminator, generator_size, generator_depth), heads=("mlm",)
        )
        if sharing == "gdes":
            share_gdes(self.generator, self.discriminator)
        else:
            tie_embeddings(self.generator, self.discriminator)

    def folded_discriminator(self) -> PreTrainingModel:
        """The discriminator as a plain model: under GDES its token table is sg(E_G) + delta,
        written out as one table (what it saw)."""
        if self.sharing != "gdes":
            return self.discriminator
        plain = PreTrainingModel(self.discriminator.config, heads=("rtd",))
        state = self.discriminator.state_dict()
        prefix = "encoder.embeddings.tokens."
        folded = self.discriminator.encoder.embeddings.tokens.weight.detach()
        state = {k: v for k, v in state.items() if not k.startswith(prefix)}
        plain.load_state_dict({**state, prefix + "weight": folded.clone()})
        return plain

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
