"""Pixel rays from OpenCV cam2world poses and normalized intrinsics."""
from __future__ import annotations

import torch
from torch import Tensor

from tri3d.ops._checks import check_finite, check_tensor


def pixel_rays(
    cam2world: Tensor,  # [..., 4, 4]
    intrinsics: Tensor,  # [..., 3, 3]
    resolution: int,
) -> tuple[Tensor, Tensor]:  # origins [..., H*W, 3], directions [..., H*W, 3]
    """World-space rays through the centres of a ``resolution x resolution`` image.

    Pixel ``(row j, column i)`` has normalized coordinates ``((i + 0.5) / res,
    (j + 0.5) / res)``; rays are listed row-major. Directions have unit length.

    Args:
        cam2world: OpenCV camera-to-world poses ``[..., 4, 4]``.
        intrinsics: normalized intrinsics ``[..., 3, 3]`` (same leading shape).
        resolution: image side in pixels.

    Returns:
        ``(origins [..., H*W, 3], directions [..., H*W, 3])``.
    """
    check_tensor("cam2world", cam2world, (*(None,) * (cam2world.dim() - 2), 4, 4))
    check_tensor("intrinsics", intrinsics, (*(None,) * (intrinsics.dim() - 2), 3, 3))
    if cam2world.shape[:-2] != intrinsics.shape[:-2]:
        raise ValueError(
            f"cam2world and intrinsics must share leading dims, got {list(cam2world.shape)} and {list(intrinsics.shape)}"
        )
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be an integer >= 1, got {resolution!r}")
    check_finite("cam2world", cam2world)
    check_finite("intrinsics", intrinsics)
    dtype, device = cam2world.dtype, cam2world.device
    centres = (torch.arange(resolution, dtype=dtype, device=device) + 0.5) / resolution
    v, u = torch.meshgrid(centres, centres, indexing="ij")  # row-major: v -> rows, u -> columns
    u, v = u.reshape(-1), v.reshape(-1)
    fx, fy = intrinsics[..., 0, 0, None], intrinsics[..., 1, 1, None]
    cx, cy = intrinsics[..., 0, 2, None], intrinsics[..., 1, 2, None]
    skew = intrinsics[..., 0, 1, None]
    y_cam = (v - cy) / fy
    x_cam = (u - cx - skew * y_cam) / fx
    dirs_cam = torch.stack([x_cam, y_cam, torch.ones_like(x_cam)], dim=-1)  # [..., HW, 3]
    dirs = dirs_cam @ cam2world[..., :3, :3].transpose(-1, -2)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = cam2world[..., None, :3, 3].expand_as(dirs)
    return origins, dirs
