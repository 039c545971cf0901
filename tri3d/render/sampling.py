"""Stratified coarse depths along rays: ``linspace(near, far, S)`` plus a uniform jitter
of one bin. The fine (importance) samples and their merge are ops: ``tri3d.ops.importance``
and ``tri3d.ops.merge``."""
from __future__ import annotations

import torch
from torch import Tensor


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
