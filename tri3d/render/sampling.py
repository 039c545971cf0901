"""Depth sampling along rays: stratified coarse samples and importance resampling.

Coarse depths are ``linspace(near, far, S)`` plus a uniform jitter of one bin. Fine
depths follow EG3D: the coarse weights are smoothed by ``max_pool1d(2, 1, pad 1)`` then
``avg_pool1d(2, 1)`` and lifted by 0.01; inverse-CDF sampling (eps 1e-5) then runs on the
coarse midpoints with the interior smoothed weights (EG3D's ``weights[:, 1:-1]``).
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
    native,
    native_pointers,
    stream_handle,
)
from tri3d.ops._checks import check_finite, check_nonnegative, check_same_device, check_sorted, check_tensor
from tri3d.ops._dispatch import always, resolve_impl

WEIGHT_FLOOR = 0.01
PDF_EPS = 1e-5


def check_near_far(near: float, far: float) -> None:
    """Raise ``ValueError`` unless ``0 <= near < far`` are finite."""
    if not (0 <= near < far < float("inf")):
        raise ValueError(f"near and far must satisfy 0 <= near < far < inf, got near={near}, far={far}")


def stratified_depths(
    batch: int,
    rays: int,
    samples: int,
    near: float,
    far: float,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> Tensor:  # [batch, rays, samples, 1]
    """Stratified depths: ``linspace(near, far, samples)`` + uniform jitter of one bin.

    With ``deterministic=True`` the jitter is a constant half bin (no randomness).
    """
    check_near_far(near, far)
    if samples < 2:
        raise ValueError(f"samples must be >= 2, got {samples}")
    base = torch.linspace(near, far, samples, device=device, dtype=dtype)
    bin_size = (far - near) / (samples - 1)
    if deterministic:
        jitter = torch.full((batch, rays, samples), 0.5, device=device, dtype=dtype)
    else:
        jitter = torch.rand(batch, rays, samples, device=device, dtype=dtype, generator=generator)
    return (base + jitter * bin_size).unsqueeze(-1)


def smooth_weights(weights: Tensor) -> Tensor:  # [M, K] -> [M, K]
    """EG3D's weight smoothing: max-pool (2, 1, pad 1), avg-pool (2, 1), plus 0.01."""
    w = F.max_pool1d(weights.unsqueeze(1), 2, 1, padding=1)
    return F.avg_pool1d(w, 2, 1).squeeze(1) + WEIGHT_FLOOR


def sample_pdf(
    bins: Tensor,  # [M, K + 1]
    weights: Tensor,  # [M, K]
    u: Tensor,  # [M, n] uniform in [0, 1)
) -> Tensor:  # [M, n]
    """Inverse-CDF sampling of the piecewise-constant density ``weights`` over ``bins``."""
    weights = weights + PDF_EPS
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)  # [M, K+1]
    k = weights.shape[-1]
    idx = torch.searchsorted(cdf.contiguous(), u.contiguous(), right=True)
    below = (idx - 1).clamp(min=0)
    above = idx.clamp(max=k)
    cdf_lo, cdf_hi = cdf.gather(1, below), cdf.gather(1, above)
    bin_lo, bin_hi = bins.gather(1, below), bins.gather(1, above)
    denom = cdf_hi - cdf_lo
    denom = torch.where(denom < PDF_EPS, torch.ones_like(denom), denom)
    return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)


def _check_importance_args(depths: Tensor, weights: Tensor, samples: int) -> None:
    check_same_device(("depths", "weights"), (depths, weights))
    check_tensor("depths", depths, ("B", "R", "S", 1))
    check_tensor("weights", weights, ("B", "R", "S-1", 1))
    B, R, S, _ = depths.shape
    if weights.shape[:2] != (B, R) or weights.shape[2] != S - 1:
        raise ValueError(f"weights must have shape [{B}, {R}, {S - 1}, 1], got {list(weights.shape)}")
    if S < 4:
        raise ValueError(f"importance sampling needs at least 4 coarse samples per ray, got S={S}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    check_finite("depths", depths)
    check_sorted("depths", depths, dim=2)
    check_nonnegative("weights", weights)


def _cdf_levels(rays: int, samples: int, device: torch.device, dtype: torch.dtype, generator,
                deterministic: bool) -> Tensor:  # [rays, samples]
    if deterministic:
        return torch.linspace(0, 1, samples, device=device, dtype=dtype).expand(rays, samples).contiguous()
    return torch.rand(rays, samples, device=device, dtype=dtype, generator=generator)


def _importance_inputs(depths: Tensor, weights: Tensor, samples: int, generator, deterministic: bool):
    """Validated flat ``(depths [M, S], weights [M, S-1], cdf levels [M, samples])`` in the
    compute dtype: fp64 when either input is fp64, else fp32."""
    _check_importance_args(depths, weights, samples)
    B, R, S, _ = depths.shape
    dtype = torch.float64 if torch.float64 in (depths.dtype, weights.dtype) else torch.float32
    d = depths.detach().reshape(B * R, S).to(dtype).contiguous()
    w = weights.detach().reshape(B * R, S - 1).to(dtype).contiguous()
    return d, w, _cdf_levels(B * R, samples, d.device, dtype, generator, deterministic)


def importance_depths_ref(
    depths: Tensor,  # [B, R, S, 1]
    weights: Tensor,  # [B, R, S-1, 1]
    samples: int,
    *,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> Tensor:  # [B, R, samples, 1]
    """Reference importance sampler (fp64 if an input is fp64, else fp32; no gradient)."""
    d, w, u = _importance_inputs(depths, weights, samples, generator, deterministic)
    mids = (d[:, 1:] + d[:, :-1]) / 2
    fine = sample_pdf(mids, smooth_weights(w)[:, 1:-1], u)
    return fine.reshape(*depths.shape[:2], samples, 1).to(depths.dtype)


def importance_depths_native(
    depths: Tensor,  # [B, R, S, 1]
    weights: Tensor,  # [B, R, S-1, 1]
    samples: int,
    *,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> Tensor:  # [B, R, samples, 1]
    """Native importance sampler (C++ / CUDA); draws the same uniforms as the reference."""
    d, w, u = _importance_inputs(depths, weights, samples, generator, deterministic)
    M, S = d.shape
    fine = torch.empty_like(u)
    pointers = native_pointers("importance_depths", d.device, [
        ("depths", d, (M, S), d.dtype), ("weights", w, (M, S - 1), d.dtype), ("levels", u, (M, samples), d.dtype),
        ("out", fine, (M, samples), d.dtype),
    ])
    with _backend.on_device(d.device):
        native().importance(device_name(d), NATIVE_DTYPES[d.dtype], M, S, samples, *pointers, stream_handle(d))
    return fine.reshape(*depths.shape[:2], samples, 1).to(depths.dtype)


def importance_depths(
    depths: Tensor,  # [B, R, S, 1]
    weights: Tensor,  # [B, R, S-1, 1]
    samples: int,
    *,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
    impl: str = "auto",
) -> Tensor:  # [B, R, samples, 1]
    """Draw ``samples`` fine depths per ray from the coarse compositing weights.

    Args:
        depths: sorted coarse depths ``[B, R, S, 1]``.
        weights: coarse compositing weights ``[B, R, S-1, 1]``.
        samples: fine samples per ray.
        generator: random generator for the uniform draws.
        deterministic: use evenly spaced CDF levels ``linspace(0, 1, samples)`` instead
            of uniform draws.
        impl: "auto", "ref", "cpp" (CPU tensors) or "cuda" (CUDA tensors); all paths draw
            the same uniforms, so they agree up to rounding.

    Returns:
        Unsorted fine depths ``[B, R, samples, 1]`` (detached).
    """
    device = depths.device if isinstance(depths, Tensor) else torch.device("cpu")
    chosen = resolve_impl(
        "importance_depths", impl, device, {"cuda": cuda_unavailable, "cpp": cpp_unavailable, "ref": always}
    )
    fn = importance_depths_ref if chosen == "ref" else importance_depths_native
    return fn(depths, weights, samples, generator=generator, deterministic=deterministic)


def merge_samples_ref(
    depths_a: Tensor,  # [B, R, Sa, 1]
    sigma_a: Tensor,  # [B, R, Sa, 1]
    rgb_a: Tensor,  # [B, R, Sa, C]
    depths_b: Tensor,  # [B, R, Sb, 1]
    sigma_b: Tensor,  # [B, R, Sb, 1]
    rgb_b: Tensor,  # [B, R, Sb, C]
) -> tuple[Tensor, Tensor, Tensor]:  # depths, sigma [B, R, Sa+Sb, 1], rgb [B, R, Sa+Sb, C]
    """Concatenate two sample sets along each ray and sort them by depth."""
    depths = torch.cat([depths_a, depths_b], dim=2)
    _, order = torch.sort(depths, dim=2)
    return _gather_merged(order, depths_a, sigma_a, rgb_a, depths_b, sigma_b, rgb_b)


def _gather_merged(order, depths_a, sigma_a, rgb_a, depths_b, sigma_b, rgb_b):
    depths = torch.cat([depths_a, depths_b], dim=2).gather(2, order)
    sigma = torch.cat([sigma_a, sigma_b], dim=2).gather(2, order)
    rgb = torch.cat([rgb_a, rgb_b], dim=2)
    return depths, sigma, rgb.gather(2, order.expand(-1, -1, -1, rgb.shape[-1]))


def merge_order_native(
    depths_a: Tensor,  # [B, R, Sa, 1] sorted
    depths_b: Tensor,  # [B, R, Sb, 1]
) -> Tensor:  # [B, R, Sa+Sb, 1] int64 indices into concat(a, b), in depth order
    """Native merge of sorted coarse with unsorted fine depths (C++ / CUDA)."""
    B, R, Sa, _ = depths_a.shape
    Sb = depths_b.shape[2]
    dtype = torch.float64 if torch.float64 in (depths_a.dtype, depths_b.dtype) else torch.float32
    a = depths_a.detach().to(dtype).reshape(B * R, Sa).contiguous()
    b = depths_b.detach().to(dtype).reshape(B * R, Sb).contiguous()
    merged = a.new_empty(B * R, Sa + Sb)
    order = torch.empty(B * R, Sa + Sb, dtype=torch.int64, device=a.device)
    pointers = native_pointers("merge_samples", a.device, [
        ("depths_a", a, (B * R, Sa), dtype), ("depths_b", b, (B * R, Sb), dtype),
        ("merged", merged, (B * R, Sa + Sb), dtype), ("order", order, (B * R, Sa + Sb), torch.int64),
    ])
    with _backend.on_device(a.device):
        native().merge_sorted(device_name(a), NATIVE_DTYPES[dtype], B * R, Sa, Sb, *pointers, stream_handle(a))
    return order.reshape(B, R, Sa + Sb, 1)


def merge_samples(
    depths_a: Tensor,  # [B, R, Sa, 1] sorted (the coarse samples)
    sigma_a: Tensor,  # [B, R, Sa, 1]
    rgb_a: Tensor,  # [B, R, Sa, C]
    depths_b: Tensor,  # [B, R, Sb, 1] (the fine samples, any order)
    sigma_b: Tensor,  # [B, R, Sb, 1]
    rgb_b: Tensor,  # [B, R, Sb, C]
    *,
    impl: str = "auto",
) -> tuple[Tensor, Tensor, Tensor]:  # depths, sigma [B, R, Sa+Sb, 1], rgb [B, R, Sa+Sb, C]
    """Merge coarse and fine samples of each ray into depth order (values follow their depths).

    ``impl``: "auto", "ref" (``torch.sort``), "cpp" or "cuda" (a native merge that needs
    ``depths_a`` sorted, as stratified samples are). Gradients flow to sigma and rgb.
    """
    check_same_device(("depths_a", "sigma_a", "rgb_a", "depths_b", "sigma_b", "rgb_b"),
                      (depths_a, sigma_a, rgb_a, depths_b, sigma_b, rgb_b))
    device = depths_a.device if isinstance(depths_a, Tensor) else torch.device("cpu")
    chosen = resolve_impl("merge_samples", impl, device,
                          {"cuda": cuda_unavailable, "cpp": cpp_unavailable, "ref": always})
    if chosen == "ref":
        return merge_samples_ref(depths_a, sigma_a, rgb_a, depths_b, sigma_b, rgb_b)
    check_finite("depths_a", depths_a)  # NaN would pass the sorted check and the native merge
    check_finite("depths_b", depths_b)
    check_sorted("depths_a", depths_a, dim=2)
    order = merge_order_native(depths_a, depths_b)
    return _gather_merged(order, depths_a, sigma_a, rgb_a, depths_b, sigma_b, rgb_b)
