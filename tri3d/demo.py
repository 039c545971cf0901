"""Render a smooth random triplane from sphere poses to a PNG (a first look at the renderer)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from tri3d.export import image_grid, save_png
from tri3d.models import TriplaneDecoder
from tri3d.ops import triplane_decode
from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses


def smooth_random_planes(batch: int, channels: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Low-frequency random planes ``[batch, 3, channels, size, size]`` (coarse noise, upsampled)."""
    coarse = torch.randn(batch * 3, channels, 6, 6, generator=generator) * 4
    planes = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return planes.reshape(batch, 3, channels, size, size)


def render_demo(out: str | Path, *, objects: int = 2, views: int = 3, resolution: int = 64, seed: int = 0) -> Path:
    """Render ``objects`` random triplanes from ``views`` spread sphere poses into one PNG grid."""
    g = torch.Generator().manual_seed(seed)
    planes = smooth_random_planes(objects, 32, 64, g)
    decoder = TriplaneDecoder(n_hidden=3, out_features=3)
    cams = sample_multiview_poses(objects, views, min_angle_deg=0.0, generator=g)
    renderer = TriplaneRenderer(ray_chunk=1 << 15, white_back=True)

    def blob(xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # A random decoder alone renders faint fog: give it a solid, noisy-surfaced core.
        sigma, rgb = triplane_decode(planes, xyz, decoder)
        return sigma * 20 + 400 * (0.3 - xyz.norm(dim=-1, keepdim=True)), rgb

    with torch.no_grad():
        out_ = renderer.render_field(blob, cams, fov_to_intrinsics(18.837), resolution, batch=objects, generator=g)
    return save_png(image_grid(out_["rgb"], out_["depth"]), out)
