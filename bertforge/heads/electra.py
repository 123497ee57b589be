"""ELECTRA's generator and discriminator share their input embeddings (Clark et al., 2020)."""

from __future__ import annotations

from bertforge.errors import ConfigError
from bertforge.heads.pretraining import PreTrainingModel

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
