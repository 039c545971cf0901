"""Layer 2 networks: decoder, generator, discriminator."""
from __future__ import annotations

from tri3d.models.decoder import EqualizedLinear, TriplaneDecoder

__all__ = ["EqualizedLinear", "TriplaneDecoder"]
