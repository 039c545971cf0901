"""Modulated convolution (StyleGAN2), reference path.

Non-grouped formulation (the training reference): scale the input channels by the
per-sample styles, convolve with the shared weight, then scale each output channel by
the demodulation coefficient ``d[n, o] = 1 / sqrt(sum_{i,k} (w[o,i,k] s[n,i])^2 + 1e-8)``.
``up=2`` FIR-upsamples the input ([1, 3, 3, 1]) before the convolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d.ops._checks import check_same_size, check_tensor
from tri3d.ops._dispatch import always, resolve_impl
from tri3d.ops.upfirdn import setup_filter, upsample2d

DEMOD_EPS = 1e-8
_RESAMPLE: dict[torch.device, Tensor] = {}


def _resample_filter(device: torch.device) -> Tensor:  # [4, 4], one copy per device (no per-call transfer)
    if device not in _RESAMPLE:
        _RESAMPLE[device] = setup_filter([1, 3, 3, 1]).to(device)
    return _RESAMPLE[device]


def demodulation(weight: Tensor, styles: Tensor) -> Tensor:  # [O, I, k, k], [N, I] -> [N, O]
    """Per-sample, per-output-channel demodulation coefficients."""
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]
    return (w.square().sum(dim=(2, 3, 4)) + DEMOD_EPS).rsqrt()


def _check_modconv_args(x: Tensor, weight: Tensor, styles: Tensor, up: int) -> None:
    check_tensor("x", x, ("N", "I", "H", "W"))
    check_tensor("weight", weight, ("O", "I", "k", "k"))
    check_tensor("styles", styles, ("N", "I"))
    check_same_size(("x", "styles"), (x, styles), (0, 0))
    check_same_size(("x", "weight", "styles"), (x, weight, styles), (1, 1, 1))
    if up not in (1, 2):
        raise ValueError(f"up must be 1 or 2, got {up}")


def modulated_conv2d_ref(
    x: Tensor,  # [N, I, H, W]
    weight: Tensor,  # [O, I, k, k]
    styles: Tensor,  # [N, I]
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int | None = None,
) -> Tensor:  # [N, O, H*up, W*up]
    """Reference modulated convolution (see module doc)."""
    _check_modconv_args(x, weight, styles, up)
    padding = weight.shape[-1] // 2 if padding is None else padding
    w = weight.to(x.dtype)
    x = x * styles.to(x.dtype)[:, :, None, None]
    if up == 2:
        x = upsample2d(x, _resample_filter(x.device))
    x = F.conv2d(x, w, padding=padding)
    if demodulate:
        x = x * demodulation(w, styles.to(x.dtype))[:, :, None, None]
    return x


def modulated_conv2d(
    x: Tensor,  # [N, I, H, W]
    weight: Tensor,  # [O, I, k, k]
    styles: Tensor,  # [N, I]
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int | None = None,
    impl: str = "auto",
) -> Tensor:  # [N, O, H*up, W*up]
    """StyleGAN2 modulated convolution.

    Args:
        x: input activations ``[N, I, H, W]``.
        weight: shared convolution weight ``[O, I, k, k]``.
        styles: per-sample input-channel scales ``[N, I]``.
        demodulate: normalize each output channel to unit expected variance.
        up: 1, or 2 to FIR-upsample before the convolution.
        padding: convolution padding (default ``k // 2``).
        impl: "auto" or "ref".

    Returns:
        ``[N, O, H * up, W * up]``.
    """
    device = x.device if isinstance(x, Tensor) else torch.device("cpu")
    resolve_impl("modulated_conv2d", impl, device, {"ref": always})
    return modulated_conv2d_ref(x, weight, styles, demodulate=demodulate, up=up, padding=padding)
