"""Triplane feature sampling and the fused sample + decode op.

Numerics (DESIGN.md): world ``xyz`` in ``[-box_warp/2, box_warp/2]^3`` maps to
``[-1, 1]`` by ``xyz * 2 / box_warp``; each plane is read with
``F.grid_sample(bilinear, zeros padding, align_corners=False)`` at its two coordinates
(u -> width, v -> height) and the three planes' features are averaged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d.ops._checks import check_finite, check_same_size, check_tensor
from tri3d.ops._dispatch import always, resolve_impl

# Coordinate indices (u, v) each plane is read at.
PLANE_AXES: dict[str, tuple[tuple[int, int], ...]] = {
    "xyz": ((0, 1), (0, 2), (1, 2)),
    "eg3d": ((0, 1), (0, 2), (2, 0)),  # EG3D's published planes (EG3D issue #67)
}


def plane_coords(
    xyz: Tensor,  # [B, N, 3]
    box_warp: float,
    plane_axes: str,
) -> Tensor:  # [B, 3, N, 2]
    """Normalized (u, v) grid coordinates of every point on each of the three planes."""
    axes = PLANE_AXES[plane_axes]
    coords = xyz * (2.0 / box_warp)
    return torch.stack([coords[..., list(uv)] for uv in axes], dim=1)


def _check_sample_args(planes: Tensor, xyz: Tensor, box_warp: float, plane_axes: str) -> None:
    check_tensor("planes", planes, ("B", 3, "C", "H", "W"))
    check_tensor("xyz", xyz, ("B", "N", 3))
    check_same_size(("planes", "xyz"), (planes, xyz), (0, 0))
    if plane_axes not in PLANE_AXES:
        raise ValueError(f"plane_axes must be one of {tuple(PLANE_AXES)}, got {plane_axes!r}")
    if not box_warp > 0:
        raise ValueError(f"box_warp must be > 0, got {box_warp}")
    check_finite("xyz", xyz)


def sample_triplane_ref(
    planes: Tensor,  # [B, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
) -> Tensor:  # [B, N, C]
    """Reference triplane sampling in pure PyTorch (see module doc for the numerics)."""
    _check_sample_args(planes, xyz, box_warp, plane_axes)
    B, _, C, H, W = planes.shape
    N = xyz.shape[1]
    grid = plane_coords(xyz, box_warp, plane_axes).to(planes.dtype).reshape(B * 3, 1, N, 2)
    feats = F.grid_sample(
        planes.reshape(B * 3, C, H, W), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # [B*3, C, 1, N]
    return feats.reshape(B, 3, C, N).mean(dim=1).transpose(1, 2)


def sample_triplane(
    planes: Tensor,  # [B, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
    impl: str = "auto",
) -> Tensor:  # [B, N, C]
    """Bilinearly sample the three planes at world points and average them.

    Args:
        planes: triplane features ``[B, 3, C, H, W]``.
        xyz: world points ``[B, N, 3]``; points outside the box read zeros.
        box_warp: side of the cube the planes span.
        plane_axes: "xyz" (planes xy, xz, yz) or "eg3d" (xy, xz, zx).
        impl: "auto" or "ref".

    Returns:
        Features ``[B, N, C]``.
    """
    resolve_impl("sample_triplane", impl, xyz.device if isinstance(xyz, Tensor) else torch.device("cpu"), {"ref": always})
    return sample_triplane_ref(planes, xyz, box_warp=box_warp, plane_axes=plane_axes)


def triplane_decode_ref(
    planes: Tensor,  # [B, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    decoder: torch.nn.Module,
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
) -> tuple[Tensor, Tensor]:  # sigma_raw [B, N, 1], rgb [B, N, C_out]
    """Reference sample + decode: ``decoder(sample_triplane_ref(...))``."""
    return decoder(sample_triplane_ref(planes, xyz, box_warp=box_warp, plane_axes=plane_axes))


def triplane_decode(
    planes: Tensor,  # [B, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    decoder: torch.nn.Module,
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
    impl: str = "auto",
) -> tuple[Tensor, Tensor]:  # sigma_raw [B, N, 1], rgb [B, N, C_out]
    """Sample the triplane at ``xyz`` and run the decoder MLP on the averaged features.

    Args:
        planes: triplane features ``[B, 3, C, H, W]``.
        xyz: world points ``[B, N, 3]``.
        decoder: a ``TriplaneDecoder`` (anything with ``effective_layers()`` for fused paths).
        box_warp: side of the cube the planes span.
        plane_axes: "xyz" or "eg3d".
        impl: "auto" or "ref".

    Returns:
        ``(sigma_raw [B, N, 1], rgb [B, N, C_out])``.
    """
    device = xyz.device if isinstance(xyz, Tensor) else torch.device("cpu")
    resolve_impl("triplane_decode", impl, device, {"ref": always})
    return triplane_decode_ref(planes, xyz, decoder, box_warp=box_warp, plane_axes=plane_axes)
