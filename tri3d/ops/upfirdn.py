"""FIR up/down-sampling (StyleGAN2's upfirdn2d), reference implementation.

``upfirdn2d_ref`` inserts ``up - 1`` zeros between pixels, pads, convolves with a
separable FIR filter and keeps every ``down``-th pixel. ``upsample2d`` is the common
2x case with the [1, 3, 3, 1] filter (gain up^2 keeps the mean).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d.ops._checks import check_tensor
from tri3d.ops._layout import conv_input


def setup_filter(taps: list[float] | Tensor, *, normalize: bool = True) -> Tensor:  # [k] -> [k, k]
    """Separable 2D FIR filter from 1D taps (outer product), normalized to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.dim() != 1 or f.numel() < 1:
        raise ValueError(f"taps must be a non-empty 1D list, got shape {list(f.shape)}")
    f = torch.outer(f, f)
    return f / f.sum() if normalize else f


def upfirdn2d_ref(
    x: Tensor,  # [N, C, H, W]
    f: Tensor,  # [k, k]
    *,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),  # x0, x1, y0, y1
    gain: float = 1.0,
) -> Tensor:  # [N, C, H', W']
    """Upsample by zero insertion, pad, FIR-filter, downsample."""
    check_tensor("x", x, ("N", "C", "H", "W"))
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1, got up={up}, down={down}")
    N, C, H, W = x.shape
    if up > 1:
        x = x.reshape(N, C, H, 1, W, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(N, C, H * up, W * up)
    x0, x1, y0, y1 = padding
    x = F.pad(x, (max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)))
    x = x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]
    k = f.to(x.dtype) * (gain ** (f.dim() / 2))
    k = k.flip([0, 1])[None, None].repeat(C, 1, 1, 1)
    x = F.conv2d(conv_input(x), k, groups=C)
    return x[:, :, ::down, ::down]


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:  # [N, C, H, W] -> [N, C, H*up, W*up]
    """FIR upsampling that keeps the image centred (StyleGAN2's padding)."""
    k = f.shape[0]
    p0 = (k + up - 1) // 2
    p1 = (k - up) // 2
    return upfirdn2d_ref(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: Tensor, f: Tensor, down: int = 2) -> Tensor:  # [N, C, H, W] -> [N, C, H/down, W/down]
    """FIR downsampling (StyleGAN2's padding)."""
    k = f.shape[0]
    p0 = (k - down + 1) // 2
    p1 = (k - down) // 2
    return upfirdn2d_ref(x, f, down=down, padding=(p0, p1, p0, p1))
