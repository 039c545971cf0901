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

from tri3d import _backend
from tri3d._backend import (
    NATIVE_DTYPES,
    cpp_unavailable,
    cuda_unavailable,
    device_name,
    native_pointers,
    stream_handle,
)
from tri3d.ops._checks import check_finite, check_same_device, check_same_size, check_sorted, check_tensor
from tri3d.ops._dispatch import always, resolve_impl
from tri3d.utils.nvtx import nvtx_range

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


def _native_dtype(*tensors: Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _native_call_dtype(t: Tensor) -> torch.dtype:
    if t.dtype not in NATIVE_DTYPES:
        raise ValueError(f"composite: the native kernels compute in float32 or float64, got {t.dtype}")
    return t.dtype


def composite_native_forward(
    sigma: Tensor,  # [M, S] contiguous
    rgb: Tensor,  # [M, S, C] contiguous
    depths: Tensor,  # [M, S] contiguous
) -> tuple[Tensor, Tensor, Tensor]:  # rgb [M, C], depth [M], weights [M, S-1]
    """Launch the native forward (C++ on CPU tensors, CUDA on CUDA tensors); every
    pointer's tensor is checked against the sizes passed (``native_pointers``)."""
    M, S, C = rgb.shape
    dt = _native_call_dtype(rgb)
    out_rgb = rgb.new_empty(M, C)
    out_depth = rgb.new_empty(M)
    out_w = rgb.new_empty(M, S - 1)
    pointers = native_pointers("composite", rgb.device, [
        ("sigma", sigma, (M, S), dt), ("rgb", rgb, (M, S, C), dt), ("depths", depths, (M, S), dt),
        ("out_rgb", out_rgb, (M, C), dt), ("out_depth", out_depth, (M,), dt), ("out_weights", out_w, (M, S - 1), dt),
    ])
    with _backend.on_device(rgb.device):
        _backend.kernels_for(rgb.device).composite_forward(device_name(rgb), NATIVE_DTYPES[dt], M, S, C, *pointers,
                                                           stream_handle(rgb))
    return out_rgb, out_depth, out_w


def composite_native_backward(
    sigma: Tensor,  # [M, S]
    rgb: Tensor,  # [M, S, C]
    depths: Tensor,  # [M, S]
    grad_rgb: Tensor,  # [M, C]
    grad_depth: Tensor,  # [M]
    grad_weights: Tensor | None,  # [M, S-1]
) -> tuple[Tensor, Tensor]:  # grad_sigma [M, S], grad_rgb [M, S, C]
    """Launch the native closed-form backward (``grad_weights`` may be ``None``: no
    gradient reaches the weights); pointers checked as in the forward."""
    if grad_depth is None:
        raise ValueError("composite backward: grad_depth must be a tensor (zeros when depth gets no gradient)")
    M, S, C = rgb.shape
    dt = _native_call_dtype(rgb)
    g_sigma = rgb.new_empty(M, S)
    g_rgb = rgb.new_empty(M, S, C)
    pointers = native_pointers("composite backward", rgb.device, [
        ("sigma", sigma, (M, S), dt), ("rgb", rgb, (M, S, C), dt), ("depths", depths, (M, S), dt),
        ("grad_rgb", grad_rgb, (M, C), dt), ("grad_depth", grad_depth, (M,), dt),
        ("grad_weights", grad_weights, (M, S - 1), dt), ("grad_sigma_out", g_sigma, (M, S), dt),
        ("grad_rgb_out", g_rgb, (M, S, C), dt),
    ])
    with _backend.on_device(rgb.device):
        _backend.kernels_for(rgb.device).composite_backward(device_name(rgb), NATIVE_DTYPES[dt], M, S, C, *pointers,
                                                            stream_handle(rgb))
    return g_sigma, g_rgb


class _CompositeNative(torch.autograd.Function):
    """Native compositing over flattened rays; gradients for sigma and rgb only."""

    @staticmethod
    def forward(ctx, sigma: Tensor, rgb: Tensor, depths: Tensor):  # [M, S], [M, S, C], [M, S]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(sigma, rgb, depths)
        with nvtx_range("tri3d.composite.fwd"):
            return composite_native_forward(sigma, rgb, depths)

    @staticmethod
    def backward(ctx, g_rgb, g_depth, g_w):
        sigma, rgb, depths = ctx.saved_tensors
        M, _, C = rgb.shape
        g_rgb = rgb.new_zeros(M, C) if g_rgb is None else g_rgb.to(rgb.dtype).contiguous()
        g_depth = rgb.new_zeros(M) if g_depth is None else g_depth.to(rgb.dtype).contiguous()
        g_w = None if g_w is None else g_w.to(rgb.dtype).contiguous()
        with nvtx_range("tri3d.composite.bwd"):
            g_sigma, g_c = composite_native_backward(sigma, rgb, depths, g_rgb, g_depth, g_w)
        return g_sigma, g_c, None


def composite_native(
    sigma_raw: Tensor,  # [B, R, S, 1]
    rgb: Tensor,  # [B, R, S, C]
    depths: Tensor,  # [B, R, S, 1]
) -> tuple[Tensor, Tensor, Tensor]:  # rgb [B, R, C], depth [B, R, 1], weights [B, R, S-1, 1]
    """The native path of ``composite`` (fp32, or fp64 when any input is fp64)."""
    check_composite_args(sigma_raw, rgb, depths)
    if depths.requires_grad:
        raise ValueError("depths requires grad, but the native compositor does not differentiate depths; "
                         "detach them or use impl='ref'")
    B, R, S, C = rgb.shape
    dtype = _native_dtype(sigma_raw, rgb, depths)
    flat = [t.to(dtype).reshape(B * R, S, t.shape[-1]).contiguous() for t in (sigma_raw, rgb, depths)]
    out_rgb, out_depth, out_w = _CompositeNative.apply(flat[0].reshape(B * R, S), flat[1], flat[2].reshape(B * R, S))
    result = torch.promote_types(torch.promote_types(sigma_raw.dtype, rgb.dtype), depths.dtype)  # as the reference
    return (out_rgb.reshape(B, R, C).to(result), out_depth.reshape(B, R, 1).to(result),
            out_w.reshape(B, R, S - 1, 1).to(result))


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
        impl: "auto", "ref", "cpp" (CPU tensors) or "cuda" (CUDA tensors). The native
            paths differentiate sigma_raw and rgb (not depths) and compute in fp32 (fp64
            when an input is fp64).

    Returns:
        ``(rgb [B, R, C], depth [B, R, 1], weights [B, R, S-1, 1])``. White background
        and the ``*2 - 1`` image scaling are the renderer's.
    """
    check_same_device(("sigma_raw", "rgb", "depths"), (sigma_raw, rgb, depths))
    device = depths.device if isinstance(depths, Tensor) else torch.device("cpu")
    chosen = resolve_impl(
        "composite", impl, device, {"cuda": cuda_unavailable, "cpp": cpp_unavailable, "ref": always}
    )
    if chosen == "ref":
        return composite_ref(sigma_raw, rgb, depths)
    return composite_native(sigma_raw, rgb, depths)
