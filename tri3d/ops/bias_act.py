"""Bias + leaky ReLU with gain and optional clamp (StyleGAN2's bias_act), reference."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

LRELU_ALPHA = 0.2
LRELU_GAIN = math.sqrt(2)


def bias_lrelu_ref(
    x: Tensor,  # [N, C, ...]
    b: Tensor | None = None,  # [C]
    *,
    alpha: float = LRELU_ALPHA,
    gain: float = LRELU_GAIN,
    clamp: float | None = None,
    linear: bool = False,
) -> Tensor:  # [N, C, ...]
    """``clamp(act(x + b) * gain)``: leaky ReLU (or identity when ``linear``)."""
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, *([1] * (x.dim() - 2)))
    if not linear:
        x = F.leaky_relu(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x
