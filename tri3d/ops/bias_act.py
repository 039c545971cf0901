"""Bias + leaky ReLU with gain and optional clamp (StyleGAN2's bias_act): the reference,
and the native path over one per-element core (``csrc/bias_act.h``): a C++ loop for CPU
tensors (``csrc/bias_act_cpu.cpp``) and a CUDA kernel for CUDA tensors
(``csrc/kernels.cuh``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d import _backend
from tri3d._backend import NATIVE_DTYPES, cpp_unavailable, cuda_unavailable, device_name, stream_handle
from tri3d.ops._dispatch import always, resolve_impl

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


# ---------------------------------------------------------------- native path (C++ on CPU, CUDA)


def _rows(t: Tensor, channels_last: bool) -> Tensor:  # [N, C, ...] -> [outer, C, inner], a view
    """``t``'s memory as ``[outer, C, inner]``: ``[N H W, C, 1]`` for channels-last memory,
    else ``[N, C, H W]`` (``t`` must be dense in that layout)."""
    N, C = t.shape[:2]
    inner = math.prod(t.shape[2:])
    if channels_last:
        return t.permute(0, 2, 3, 1).reshape(N * inner, C, 1)
    return t.reshape(N, C, inner)


def _is_channels_last(t: Tensor) -> bool:
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def _clamp_args(clamp: float | None) -> tuple[float, bool]:
    return (0.0, False) if clamp is None else (float(clamp), True)


def bias_lrelu_native_forward(
    x: Tensor,  # [N, C, ...] fp32 / fp64, contiguous or channels-last
    b: Tensor | None,  # [C], x's dtype
    alpha: float,
    gain: float,
    clamp: float | None,
    linear: bool,
) -> Tensor:  # [N, C, ...], x's memory layout
    """Launch the native forward on ``x``'s device; every pointer's tensor is checked
    against the sizes passed."""
    channels_last = _is_channels_last(x)
    if not channels_last:
        x = x.contiguous()
    y = torch.empty_like(x)
    x_rows, y_rows = _rows(x, channels_last), _rows(y, channels_last)
    outer, C, inner = x_rows.shape
    dt = x.dtype
    pointers = _backend.native_pointers("bias_lrelu", x.device, [
        ("x", x_rows, (outer, C, inner), dt), ("b", b, (C,), dt), ("out", y_rows, (outer, C, inner), dt),
    ])
    clamp_value, clamped = _clamp_args(clamp)
    with _backend.on_device(x.device):
        _backend.kernels_for(x.device).bias_act_forward(device_name(x), NATIVE_DTYPES[dt], outer, C, inner,
                                                        *pointers[:2], alpha, gain, clamp_value, linear, clamped,
                                                        pointers[2], stream_handle(x))
    return y


def bias_lrelu_native_backward(
    y: Tensor,  # [N, C, ...] the forward's output
    grad_y: Tensor,  # [N, C, ...]
    alpha: float,
    gain: float,
    clamp: float | None,
    linear: bool,
) -> Tensor:  # grad_x [N, C, ...], y's memory layout
    """Launch the native backward on ``y``'s device (x's gradient from y and the incoming
    gradient)."""
    channels_last = _is_channels_last(y)
    grad_y = grad_y.to(y.dtype).contiguous(memory_format=torch.channels_last if channels_last else
                                           torch.contiguous_format)
    grad_x = torch.empty_like(y)
    rows = [_rows(t, channels_last) for t in (y, grad_y, grad_x)]
    shape, dt = tuple(rows[0].shape), y.dtype
    pointers = _backend.native_pointers("bias_lrelu backward", y.device, [
        ("y", rows[0], shape, dt), ("grad_y", rows[1], shape, dt), ("grad_x", rows[2], shape, dt),
    ])
    clamp_value, clamped = _clamp_args(clamp)
    with _backend.on_device(y.device):
        _backend.kernels_for(y.device).bias_act_backward(device_name(y), NATIVE_DTYPES[dt], y.numel(), *pointers[:2],
                                                         alpha, gain, clamp_value, linear, clamped, pointers[2],
                                                         stream_handle(y))
    return grad_x


class _BiasLreluNative(torch.autograd.Function):
    """Native bias_act (C++ or CUDA); the backward reads only the output. Under
    ``create_graph`` (R1's gradient penalty differentiates D's input gradient) the
    backward is ``grad_y`` times the local slope as a constant, which is what the
    reference's double backward gives: the slope and the clamp's mask are piecewise
    constant in the input."""

    @staticmethod
    def forward(ctx, x: Tensor, b: Tensor | None, alpha: float, gain: float, clamp: float | None, linear: bool):
        y = bias_lrelu_native_forward(x, b, alpha, gain, clamp, linear)
        ctx.save_for_backward(y)
        ctx.config = (alpha, gain, clamp, linear)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        (y,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: differentiable in grad_y
            grad_x = grad_y * bias_lrelu_native_backward(y, torch.ones_like(y), *ctx.config)
        else:
            grad_x = bias_lrelu_native_backward(y, grad_y, *ctx.config)
        grad_b = None
        if ctx.needs_input_grad[1]:
            grad_b = grad_x.sum(dim=[d for d in range(grad_x.dim()) if d != 1])
        return grad_x, grad_b, None, None, None, None


def _native_unsupported(x: Tensor, alpha: float, gain: float) -> str | None:
    """Why the native path cannot compute this call (``None`` when it can)."""
    if x.dtype not in NATIVE_DTYPES:
        return f"computes float32 / float64, got {x.dtype}"
    if not (gain > 0 and alpha >= 0):
        return f"needs gain > 0 and alpha >= 0 (its backward reads the output's sign), got gain={gain}, alpha={alpha}"
    if x.dim() < 2:
        return f"needs x of shape [N, C, ...], got {list(x.shape)}"
    return None


def bias_lrelu(
    x: Tensor,  # [N, C, ...]
    b: Tensor | None = None,  # [C]
    *,
    alpha: float = LRELU_ALPHA,
    gain: float = LRELU_GAIN,
    clamp: float | None = None,
    linear: bool = False,
    impl: str = "auto",
) -> Tensor:  # [N, C, ...]
    """``clamp(act(x + b) * gain, -clamp, clamp)``: StyleGAN2's bias_act with leaky ReLU
    (slope ``alpha``) or the identity (``linear``).

    Args:
        x: activations ``[N, C, ...]`` (any memory format).
        b: per-channel bias ``[C]`` or None.
        alpha: leaky ReLU slope for negative inputs.
        gain: output scale.
        clamp: clamp the output to ``[-clamp, clamp]`` (None: no clamp); > 0.
        linear: identity instead of leaky ReLU.
        impl: "auto", "ref", "cpp" (CPU tensors) or "cuda" (CUDA tensors): the native
            paths take fp32 / fp64 and make one pass forward and one backward, reading
            the output; ``auto`` takes the native path of the tensors' device for the
            calls it can compute (fp32 / fp64) and the reference otherwise (bf16 / fp16
            under autocast).

    Returns:
        ``[N, C, ...]``, in ``x``'s memory layout.
    """
    if clamp is not None and not clamp > 0:
        raise ValueError(f"bias_lrelu: clamp must be > 0 or None, got {clamp}")
    paths = {"cuda": cuda_unavailable, "cpp": cpp_unavailable, "ref": always}
    if resolve_impl("bias_lrelu", impl, x.device, paths) != "ref":
        reason = _native_unsupported(x, alpha, gain)
        if reason is None:
            bias = None if b is None else b.to(x.dtype).contiguous()
            return _BiasLreluNative.apply(x, bias, float(alpha), float(gain), None if clamp is None else float(clamp),
                                          linear)
        if impl != "auto":
            raise ValueError(f"bias_lrelu: impl={impl!r} {reason}")
    return bias_lrelu_ref(x, b, alpha=alpha, gain=gain, clamp=clamp, linear=linear)
