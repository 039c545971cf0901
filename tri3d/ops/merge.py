"""Merging coarse and fine samples of each ray into depth order: ``merge_samples_ref``
(``torch.sort``), the native C++/CUDA merge, and ``merge_samples(..., impl="auto")``."""
from __future__ import annotations

import torch
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
from tri3d.ops._checks import check_finite, check_same_device, check_sorted
from tri3d.ops._dispatch import always, resolve_impl

# Fine samples per ray the native merge sorts (csrc/importance.h's kMergeMaxFine: a local
# array per ray); above it "auto" uses the reference.
MERGE_MAX_FINE = 128


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
        _backend.kernels_for(a.device).merge_sorted(device_name(a), NATIVE_DTYPES[dtype], B * R, Sa, Sb, *pointers,
                                                    stream_handle(a))
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
    ``depths_a`` sorted, as stratified samples are, and at most ``MERGE_MAX_FINE`` fine
    samples per ray). Gradients flow to sigma and rgb. Ties keep coarse samples first,
    then fine ones in their given order.
    """
    check_same_device(("depths_a", "sigma_a", "rgb_a", "depths_b", "sigma_b", "rgb_b"),
                      (depths_a, sigma_a, rgb_a, depths_b, sigma_b, rgb_b))
    device = depths_a.device if isinstance(depths_a, Tensor) else torch.device("cpu")
    fine = depths_b.shape[2] if isinstance(depths_b, Tensor) and depths_b.dim() == 4 else 0
    too_many = (f"the native merge sorts at most {MERGE_MAX_FINE} fine samples per ray, got {fine}"
                if fine > MERGE_MAX_FINE else None)
    chosen = resolve_impl("merge_samples", impl, device, {
        "cuda": lambda d: cuda_unavailable(d) or too_many,
        "cpp": lambda d: cpp_unavailable(d) or too_many,
        "ref": always,
    })
    if chosen == "ref":
        return merge_samples_ref(depths_a, sigma_a, rgb_a, depths_b, sigma_b, rgb_b)
    check_finite("depths_a", depths_a)  # NaN would pass the sorted check and the native merge
    check_finite("depths_b", depths_b)
    check_sorted("depths_a", depths_a, dim=2)
    order = merge_order_native(depths_a, depths_b)
    return _gather_merged(order, depths_a, sigma_a, rgb_a, depths_b, sigma_b, rgb_b)
