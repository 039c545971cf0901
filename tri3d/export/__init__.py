"""Layer 3: images, videos and meshes written from rendered outputs."""
from __future__ import annotations

from tri3d.export.grid import image_grid, save_png

__all__ = ["image_grid", "save_png"]
