"""Layer 3 data: image datasets (StyleGAN layout), class-folder import, the shapes set."""
from __future__ import annotations

from tri3d.data.dataset import ImageDataset, XFlipDataset

__all__ = ["ImageDataset", "XFlipDataset"]
