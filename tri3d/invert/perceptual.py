"""Perceptual distances for inversion.

- ``VGGPerceptual``: the TorchScript VGG16 of StyleGAN2-ADA's projector (``vgg16.pt``),
  loaded from a path: ``vgg(images_0_255, resize_images=False, return_lpips=True)`` gives
  normalized features whose squared distance is LPIPS. Never downloaded.
- ``FeaturePerceptual``: a documented fallback when no VGG file is available: the
  distance between a detector's features (e.g. the shapes classifier) plus a multi-scale
  pixel loss, so inversion runs offline.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor


class VGGPerceptual:
    """LPIPS-style distance from the StyleGAN2-ADA TorchScript VGG16."""

    def __init__(self, path: str | Path, device: torch.device | str = "cpu"):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"VGG16 file not found: {self.path} (the TorchScript vgg16.pt of "
                                    "StyleGAN2-ADA's projector)")
        try:
            self.module = torch.jit.load(str(self.path), map_location=device).eval()
        except Exception as err:
            raise ValueError(f"{self.path}: not a TorchScript VGG16 ({err})") from err
        self.name = "vgg16-lpips"

    def features(self, images: Tensor) -> Tensor:  # [N, 3, H, W] in [-1, 1]
        x = (images + 1) * 127.5
        if x.shape[-1] > 256:
            x = F.interpolate(x, size=(256, 256), mode="area")
        return self.module(x, resize_images=False, return_lpips=True)

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:  # [N, 3, H, W] x2 -> [N]
        return (self.features(a) - self.features(b)).square().sum(dim=1)


def multiscale_pixel_loss(a: Tensor, b: Tensor, scales: int = 3) -> Tensor:  # -> [N]
    """Mean squared error averaged over an image pyramid (full, 1/2, 1/4, ...)."""
    total = 0
    for k in range(scales):
        total = total + (a - b).square().mean(dim=(1, 2, 3))
        if min(a.shape[-2:]) < 4:
            break
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return total / scales


class FeaturePerceptual:
    """Fallback distance: detector features (optional) + multi-scale pixel loss."""

    def __init__(self, detector=None, feature_weight: float = 1.0):
        self.detector, self.feature_weight = detector, feature_weight
        self.name = "features+pixels" if detector is not None else "multiscale-pixels"

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:  # [N, 3, H, W] in [-1, 1] -> [N]
        loss = multiscale_pixel_loss(a, b)
        if self.detector is not None:
            fa = self.detector.model.embed(a.clamp(-1, 1))  # the rgb shapes judge reads [-1, 1] images
            fb = self.detector.model.embed(b.clamp(-1, 1))
            loss = loss + self.feature_weight * (fa - fb).square().mean(dim=1)
        return loss
