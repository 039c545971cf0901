"""Layer 2 networks: decoder, generator, discriminator."""
from __future__ import annotations

from tri3d.models.decoder import EqualizedLinear, TriplaneDecoder
from tri3d.models.discriminator import Discriminator, DiscriminatorConfig
from tri3d.models.generator import GeneratorConfig, RendererConfig, TriplaneGenerator
from tri3d.models.mapping import MappingNetwork
from tri3d.models.synthesis import SynthesisNetwork

__all__ = [
    "Discriminator",
    "DiscriminatorConfig",
    "EqualizedLinear",
    "GeneratorConfig",
    "MappingNetwork",
    "RendererConfig",
    "SynthesisNetwork",
    "TriplaneDecoder",
    "TriplaneGenerator",
]
