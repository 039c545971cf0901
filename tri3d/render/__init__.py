"""Layer 2 rendering: cameras, rays, depth sampling, the triplane renderer."""
from __future__ import annotations

from tri3d.render.renderer import TriplaneRenderer

__all__ = ["TriplaneRenderer"]
