"""Alpha compositing along rays (EG3D's MipRayMarcher2 semantics, DESIGN.md).

Per ray, with samples sorted by depth: midpoints ``delta = d[1:] - d[:-1]`` and
neighbour averages ``c_mid, sigma_mid, d_mid``; ``sigma = softplus(sigma_mid - 1)``;
``alpha = 1 - exp(-sigma * delta)``; ``T = cumprod([1, 1 - alpha + 1e-10])[:-1]``;
``w = alpha * T``; ``rgb = sum w * c_mid``; ``depth = sum w * d_mid / sum w`` (rays with
zero total weight get +inf), clamped to the ray's ``[first, last]`` depth.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d.ops._checks import check_finite, check_same_size, check_sorted, check_tensor
from tri3d.ops._dispatch import always, resolve_impl

TRANSMITTANCE_EPS = 1e-10
SIGMA_SHIFT = 1.0


def check_composite_args(sigma_raw: Tensor, rgb: Tensor, depths: Tensor) -> None:
    """Validate compositor inputs (shapes, matching sizes, finite sorted depths)."""
    check_tensor("sigma_raw", sigma_raw, ("B", "R", "S", 1))
    check_tensor("rgb", rgb, ("B", "R", "S", "C"))
    check_tensor("depths", depths, ("B", "R", "S", 1))
    for dim in range(3):
        check_same_size(("sigma_raw", "rgb", "depths"), (sigma_raw, rgb, depths), (dim, dim, dim))
    if sigma_raw.shape[2] < 2:
        raise ValueError(f"composite needs at least 2 samples per ray, got S={sigma_raw.shape[2]}")
    check_finite("depths", depths)
    check_sorted("depths", depths, dim=2)


def composite_ref(
    sigma_raw: Tensor,  # [B, R, S, 1]
    rgb: Tensor,  # [B, R, S, C]
    depths: Tensor,  # [B, R, S, 1]
) -> tuple[Tensor, Tensor, Tensor]:  # rgb [B, R, C], depth [B, R, 1], weights [B, R, S-1, 1]
    """Reference compositor in pure PyTorch (see module doc)."""
    check_composite_args(sigma_raw, rgb, depths)
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    c_mid = (rgb[:, :, :-1] + rgb[:, :, 1:]) / 2
    sigma_mid = (sigma_raw[:, :, :-1] + sigma_raw[:, :, 1:]) / 2
    d_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2

    sigma = F.softplus(sigma_mid - SIGMA_SHIFT)
    alpha = 1 - torch.exp(-sigma * deltas)
    shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + TRANSMITTANCE_EPS], dim=2)
    transmittance = torch.cumprod(shifted, dim=2)[:, :, :-1]
    weights = alpha * transmittance

    out_rgb = (weights * c_mid).sum(dim=2)
    total = weights.sum(dim=2)
    has_weight = total > 0
    depth = torch.where(
        has_weight,
        (weights * d_mid).sum(dim=2) / torch.where(has_weight, total, torch.ones_like(total)),
        torch.full_like(total, float("inf")),
    )
    depth = torch.minimum(torch.maximum(depth, depths[:, :, 0]), depths[:, :, -1])
    return out_rgb, depth, weights


def composite(
    sigma_raw: Tensor,  # [B, R, S, 1]
    rgb: Tensor,  # [B, R, S, C]
    depths: Tensor,  # [B, R, S, 1]
    *,
    impl: str = "auto",
) -> tuple[Tensor, Tensor, Tensor]:  # rgb [B, R, C], depth [B, R, 1], weights [B, R, S-1, 1]
    """Composite samples along each ray.

    Args:
        sigma_raw: raw density (before ``softplus(x - 1)``) ``[B, R, S, 1]``.
        rgb: colour/features ``[B, R, S, C]``.
        depths: sample depths along the ray, sorted along S, ``[B, R, S, 1]``.
        impl: "auto" or "ref".

    Returns:
        ``(rgb [B, R, C], depth [B, R, 1], weights [B, R, S-1, 1])``. White background
        and the ``*2 - 1`` image scaling are the renderer's.
    """
    device = depths.device if isinstance(depths, Tensor) else torch.device("cpu")
    resolve_impl("composite", impl, device, {"ref": always})
    return composite_ref(sigma_raw, rgb, depths)
