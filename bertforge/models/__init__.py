"""Encoder components; variants are presets plus composition of these pieces."""

from bertforge.models.encoder import Encoder, EncoderOutput

__all__ = ["Encoder", "EncoderOutput"]
