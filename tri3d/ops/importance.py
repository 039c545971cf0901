"""Importance sampling of fine depths from coarse compositing weights, as EG3D: the
coarse weights are smoothed by ``max_pool1d(2, 1, pad 1)`` then ``avg_pool1d(2, 1)`` and
lifted by 0.01; inverse-CDF sampling (eps 1e-5) then runs on the coarse midpoints with the
interior smoothed weights (EG3D's ``weights[:, 1:-1]``). ``importance_depths_ref``
(PyTorch), the native C++/CUDA launch, and ``importance_depths(..., impl="auto")``."""
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
from tri3d.ops._checks import check_finite, check_nonnegative, check_same_device, check_sorted, check_tensor
from tri3d.ops._dispatch import always, resolve_impl

WEIGHT_FLOOR = 0.01
PDF_EPS = 1e-5


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
        _backend.kernels_for(d.device).importance(device_name(d), NATIVE_DTYPES[d.dtype], M, S, samples, *pointers,
                                                  stream_handle(d))
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
