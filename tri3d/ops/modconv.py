"""Modulated convolution (StyleGAN2) with its epilogue: reference and fused Triton paths.

Non-grouped formulation (the training reference): scale the input channels by the
per-sample styles, convolve with the shared weight, then scale each output channel by
the demodulation coefficient ``d[n, o] = 1 / sqrt(sum_{i,k} (w[o,i,k] s[n,i])^2 + 1e-8)``.
``up=2`` is StyleGAN2's transposed convolution followed by the [1, 3, 3, 1] FIR filter,
padded once: ``upfirdn(x, f, up=2, padding=(p + 2, p + 1) per axis, gain=4)`` then a
flipped-kernel convolution without padding (a true convolution; ``p = k // 2``). The optional
epilogue is a synthesis layer's: ``+ noise * noise_strength``, ``+ bias``, activation
(leaky ReLU 0.2 or linear) times ``gain``, clamp to ``[-clamp, clamp]``.

The Triton path (``up=1``, ``padding = k // 2``) does all of it in one implicit-GEMM pass
over channels-last activations and returns a channels-last tensor; its backward has
kernels for the input, weight, styles, bias and noise strength (``kernels/modconv.py``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d import _backend
from tri3d._backend import cpp_unavailable, cuda_unavailable
from tri3d.ops._checks import check_same_size, check_tensor
from tri3d.ops._dispatch import always, resolve_impl, triton_auto_unavailable, triton_unavailable
from tri3d.ops._layout import conv_input
from tri3d.ops._library import custom_op
from tri3d.ops.bias_act import LRELU_ALPHA, LRELU_GAIN, bias_lrelu
from tri3d.ops.upfirdn import setup_filter, upfirdn2d_ref

DEMOD_EPS = 1e-8
ACTIVATIONS = ("linear", "lrelu")
PRECISIONS = ("ieee", "tf32", "bf16", "fp16")
_RESAMPLE: dict[torch.device, Tensor] = {}


def _resample_filter(device: torch.device) -> Tensor:  # [4, 4], one copy per device (no per-call transfer)
    if device not in _RESAMPLE:
        _RESAMPLE[device] = setup_filter([1, 3, 3, 1]).to(device)
    return _RESAMPLE[device]


def demodulation(weight: Tensor, styles: Tensor) -> Tensor:  # [O, I, k, k], [N, I] -> [N, O]
    """Per-sample, per-output-channel demodulation coefficients.

    ``sum_{i,k} (w[o,i,k] s[n,i])^2 = sum_i s[n,i]^2 sum_k w[o,i,k]^2``: an ``[N, O, I]``
    temporary instead of ``[N, O, I, k, k]``. A per-sample reduction rather than a matmul,
    so a sample's coefficients do not depend on the batch it is in (a data-parallel run
    then matches a single-process one). Computed in at least fp32, outside autocast."""
    dtype = torch.promote_types(torch.promote_types(weight.dtype, styles.dtype), torch.float32)
    with torch.autocast(styles.device.type, enabled=False):
        w_sq = weight.to(dtype).square().sum(dim=(2, 3))  # [O, I]
        return ((styles.to(dtype).square()[:, None, :] * w_sq).sum(dim=2) + DEMOD_EPS).rsqrt()


def _default_gain(activation: str, gain: float | None) -> float:
    return (LRELU_GAIN if activation == "lrelu" else 1.0) if gain is None else float(gain)


def _check_modconv_args(
    x: Tensor, weight: Tensor, styles: Tensor, up: int, bias: Tensor | None, noise: Tensor | None,
    noise_strength: Tensor | None, activation: str, clamp: float | None,
) -> None:
    check_tensor("x", x, ("N", "I", "H", "W"))
    check_tensor("weight", weight, ("O", "I", "k", "k"))
    check_tensor("styles", styles, ("N", "I"))
    check_same_size(("x", "styles"), (x, styles), (0, 0))
    check_same_size(("x", "weight", "styles"), (x, weight, styles), (1, 1, 1))
    if up not in (1, 2):
        raise ValueError(f"up must be 1 or 2, got {up}")
    if bias is not None:
        check_tensor("bias", bias, (weight.shape[0],))
    if noise is not None:
        out_hw = (x.shape[2] * up, x.shape[3] * up)
        check_tensor("noise", noise, (None, 1, *out_hw))
        if noise.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"noise must have batch 1 or {x.shape[0]} (x's), got {noise.shape[0]}")
        if noise_strength is None:
            raise ValueError("noise needs noise_strength")
        if noise_strength.numel() != 1:
            raise ValueError(f"noise_strength must have one element, got shape {list(noise_strength.shape)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if clamp is not None and not clamp > 0:
        raise ValueError(f"clamp must be > 0 or None, got {clamp}")


def modulated_conv2d_ref(
    x: Tensor,  # [N, I, H, W]
    weight: Tensor,  # [O, I, k, k]
    styles: Tensor,  # [N, I]
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int | None = None,
    bias: Tensor | None = None,  # [O]
    noise: Tensor | None = None,  # [N or 1, 1, H*up, W*up]
    noise_strength: Tensor | None = None,  # [] or [1]
    activation: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> Tensor:  # [N, O, H*up, W*up]
    """Reference modulated convolution + epilogue (see module doc)."""
    return _modulated_conv2d_torch(x, weight, styles, demodulate=demodulate, up=up, padding=padding, bias=bias,
                                   noise=noise, noise_strength=noise_strength, activation=activation, gain=gain,
                                   clamp=clamp, epilogue_impl="ref")


def _modulated_conv2d_torch(
    x: Tensor,  # [N, I, H, W]
    weight: Tensor,  # [O, I, k, k]
    styles: Tensor,  # [N, I]
    *,
    demodulate: bool,
    up: int,
    padding: int | None,
    bias: Tensor | None,  # [O]
    noise: Tensor | None,  # [N or 1, 1, H*up, W*up]
    noise_strength: Tensor | None,  # [] or [1]
    activation: str,
    gain: float | None,
    clamp: float | None,
    epilogue_impl: str,
) -> Tensor:  # [N, O, H*up, W*up]
    """Torch's convolutions, then the bias / activation / gain / clamp epilogue by
    ``bias_lrelu(..., impl=epilogue_impl)``: the reference with ``"ref"``."""
    _check_modconv_args(x, weight, styles, up, bias, noise, noise_strength, activation, clamp)
    padding = weight.shape[-1] // 2 if padding is None else padding
    w = weight.to(x.dtype)
    x = x * styles.to(x.dtype)[:, :, None, None]
    if up == 2:  # zero-insert, pad once, FIR, then the flipped kernel over the valid region
        pad = (padding + 2, padding + 1) * 2
        x = upfirdn2d_ref(x, _resample_filter(x.device), up=2, padding=pad, gain=4)
        x = F.conv2d(conv_input(x), w.flip([2, 3]))
    else:
        x = F.conv2d(conv_input(x), w, padding=padding)
    if demodulate:
        x = x * demodulation(weight, styles).to(x.dtype)[:, :, None, None]
    if noise is not None:
        x = x + noise.to(x.dtype) * noise_strength.to(x.dtype).reshape([])
    gain = _default_gain(activation, gain)
    if bias is not None or activation != "linear" or gain != 1 or clamp is not None:
        x = bias_lrelu(x, bias, gain=gain, clamp=clamp, linear=activation == "linear", impl=epilogue_impl)
    return x


# ---------------------------------------------------------------- fused (Triton) path


@custom_op("tri3d::modconv_fwd", mutates_args=())
def _fused_fwd(
    x: Tensor,  # [N, H, W, I] channels-last
    weight: Tensor,  # [KK, I, O] fp32
    styles: Tensor,  # [N, I] fp32
    demod: Optional[Tensor],  # [N, O] fp32
    bias: Tensor,  # [O] fp32
    noise: Optional[Tensor],  # [N or 1, H, W] fp32
    noise_strength: Optional[Tensor],  # [1] fp32
    kernel_size: int, padding: int, alpha: float, gain: float, clamp: float, precision: str,
) -> Tensor:  # [N, H, W, O]
    from tri3d.kernels.modconv import modconv_forward
    from tri3d.utils.nvtx import nvtx_range

    with nvtx_range("tri3d.modconv.fwd"), _backend.on_device(x.device):
        return modconv_forward(
            x, weight, styles, demod, bias, noise, noise_strength, kernel_size=kernel_size, padding=padding,
            alpha=alpha, gain=gain, clamp=clamp, precision=precision,
        )


@_fused_fwd.register_fake
def _fused_fwd_fake(x, weight, *args):
    return x.new_empty(*x.shape[:3], weight.shape[2])


@custom_op("tri3d::modconv_bwd", mutates_args=())
def _fused_bwd(
    grad_y: Tensor,  # [N, H, W, O]
    y: Tensor,  # [N, H, W, O]
    x: Tensor,  # [N, H, W, I]
    weight: Tensor,  # [KK, I, O]
    styles: Tensor,  # [N, I]
    demod: Optional[Tensor],  # [N, O]
    noise: Optional[Tensor],  # [N or 1, H, W]
    kernel_size: int, padding: int, alpha: float, gain: float, clamp: float, precision: str, need_input_grad: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(g_x, g_weight, g_styles, g_demod, g_bias, g_noise_strength)``; a gradient that
    does not exist (no input grad, demodulation or noise) comes back with 0 elements."""
    from tri3d.kernels.modconv import modconv_backward
    from tri3d.utils.nvtx import nvtx_range

    with nvtx_range("tri3d.modconv.bwd"), _backend.on_device(x.device):
        grads = modconv_backward(
            grad_y, y, x, weight, styles, demod, noise, kernel_size=kernel_size, padding=padding, alpha=alpha,
            gain=gain, clamp=clamp, precision=precision, need_input_grad=need_input_grad,
        )
    return tuple(g.contiguous() if g is not None else x.new_empty(0) for g in grads)


@_fused_bwd.register_fake
def _fused_bwd_fake(grad_y, y, x, weight, styles, demod, noise, *args):
    need_input_grad = args[-1]
    empty = x.new_empty(0)
    return (
        torch.empty_like(x) if need_input_grad else empty,
        torch.empty_like(weight, dtype=torch.float32),
        torch.empty_like(styles, dtype=torch.float32),
        torch.empty_like(demod, dtype=torch.float32) if demod is not None else empty,
        weight.new_empty(weight.shape[2], dtype=torch.float32),
        weight.new_empty(1, dtype=torch.float32) if noise is not None else empty,
    )


def _fused_setup_context(ctx, inputs, output) -> None:
    x, weight, styles, demod, bias, noise, noise_strength, *config = inputs
    ctx.save_for_backward(x, weight, styles, demod, noise, output)
    ctx.config = tuple(config)


def _fused_backward(ctx, grad_y: Tensor):
    x, weight, styles, demod, noise, y = ctx.saved_tensors
    g_x, g_w, g_s, g_d, g_b, g_ns = _fused_bwd(
        grad_y.contiguous(), y, x, weight, styles, demod, noise, *ctx.config, ctx.needs_input_grad[0]
    )
    g_d = g_d if demod is not None else None
    g_ns = g_ns if noise is not None else None
    return (g_x if g_x.numel() else None, g_w, g_s, g_d, g_b, None, g_ns, None, None, None, None, None, None)


_fused_fwd.register_autograd(_fused_backward, setup_context=_fused_setup_context)


def _compute_dtype(x: Tensor) -> torch.dtype:
    """``x``'s dtype, or the autocast dtype where autocast is on (as cuDNN's conv would run)."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return x.dtype


def default_precision(dtype: torch.dtype, device: torch.device) -> str:
    """Dot operands of the fused path for activations of ``dtype``: bf16/fp16 as given;
    fp32 as TF32 on CUDA when cuDNN may use TF32 (``torch.backends.cudnn.allow_tf32``,
    PyTorch's default, so the reference convolution does the same), else exact fp32."""
    if dtype == torch.bfloat16:
        return "bf16"
    if dtype == torch.float16:
        return "fp16"
    return "tf32" if device.type == "cuda" and torch.backends.cudnn.allow_tf32 else "ieee"


def modulated_conv2d_fused(
    x: Tensor,  # [N, I, H, W]
    weight: Tensor,  # [O, I, k, k]
    styles: Tensor,  # [N, I]
    *,
    demodulate: bool = True,
    bias: Tensor | None = None,  # [O]
    noise: Tensor | None = None,  # [N or 1, 1, H, W]
    noise_strength: Tensor | None = None,  # [] or [1]
    activation: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    precision: str | None = None,
) -> Tensor:  # [N, O, H, W], channels-last memory
    """The Triton path of ``modulated_conv2d`` (``up=1``, ``padding = k // 2``)."""
    _check_modconv_args(x, weight, styles, 1, bias, noise, noise_strength, activation, clamp)
    if noise is not None and noise.requires_grad:
        raise ValueError("noise requires grad, but the fused modulated_conv2d has no gradient w.r.t. noise; "
                         "detach it or use impl='ref'")
    dtype = _compute_dtype(x)
    precision = default_precision(dtype, x.device) if precision is None else precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    N, I, H, W = x.shape
    O, _, k, _ = weight.shape
    with torch.autocast(x.device.type, enabled=False):
        x_cl = x.to(dtype).permute(0, 2, 3, 1).contiguous()  # no copy when x is channels-last already
        w32 = weight.float()
        w_tap = w32.permute(2, 3, 1, 0).reshape(k * k, I, O).contiguous()
        s32 = styles.float().contiguous()
        demod = demodulation(w32, s32) if demodulate else None
        b32 = bias.float() if bias is not None else x.new_zeros(O, dtype=torch.float32)
        nz = noise.float().reshape(noise.shape[0], H, W).contiguous() if noise is not None else None
        ns = noise_strength.float().reshape(1) if noise is not None else None
        alpha = LRELU_ALPHA if activation == "lrelu" else 1.0
        y = _fused_fwd(x_cl, w_tap, s32, demod, b32, nz, ns, k, k // 2, alpha, _default_gain(activation, gain),
                       math.inf if clamp is None else float(clamp), precision)
    return y.permute(0, 3, 1, 2)


# Why ``impl="auto"`` leaves modulated convolutions to cuDNN: measured on an H100 (bench/RESULTS.md,
# 2026-11-26), the fused kernels' forward+backward was slower than cuDNN's in 25 of the 28
# layer cases (the imagenet preset's 14 up=1 shapes, fp32 and bf16) and the imagenet synthesis
# network 1.7x (tf32) / 1.2x (bf16) slower, though it used 42-45% less memory. Exact fp32
# dots (``precision="ieee"``) run on FMA units and spill.
AUTO_DECLINED = ("slower than cuDNN forward+backward on an H100 (bench/RESULTS.md, 2026-11-26); "
                 "impl='triton' runs it")


def _triton_reason(x: object, weight: object, up: int, padding: int | None, explicit: bool):
    """Availability probe of the Triton path for these arguments. ``auto`` never picks it
    (``AUTO_DECLINED``): it runs when asked for by name."""

    def probe(device: torch.device) -> str | None:
        if up != 1:
            return "the fused kernel covers up=1 only (up=2 runs on the reference path)"
        k = weight.shape[-1] if isinstance(weight, Tensor) else 0
        if k % 2 == 0 or (padding is not None and padding != k // 2):
            return "the fused kernel covers odd kernel sizes with padding = k // 2 only"
        if isinstance(x, Tensor) and x.dtype == torch.float64:
            return "the fused kernel has no float64 path"
        if not explicit:
            return triton_auto_unavailable(device) or AUTO_DECLINED
        return triton_unavailable(device)

    return probe


def modulated_conv2d(
    x: Tensor,  # [N, I, H, W]
    weight: Tensor,  # [O, I, k, k]
    styles: Tensor,  # [N, I]
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int | None = None,
    bias: Tensor | None = None,  # [O]
    noise: Tensor | None = None,  # [N or 1, 1, H*up, W*up]
    noise_strength: Tensor | None = None,  # [] or [1]
    activation: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    precision: str | None = None,
    impl: str = "auto",
) -> Tensor:  # [N, O, H*up, W*up]
    """StyleGAN2 modulated convolution with an optional synthesis-layer epilogue.

    Args:
        x: input activations ``[N, I, H, W]`` (any memory format).
        weight: shared convolution weight ``[O, I, k, k]``.
        styles: per-sample input-channel scales ``[N, I]``.
        demodulate: normalize each output channel to unit expected variance.
        up: 1, or 2 to FIR-upsample before the convolution.
        padding: convolution padding (default ``k // 2``).
        bias: per-output-channel bias ``[O]``, added after the noise.
        noise: per-pixel noise ``[N or 1, 1, H*up, W*up]``, scaled by ``noise_strength``.
        noise_strength: scalar tensor (a learned parameter in a synthesis layer).
        activation: "linear" or "lrelu" (slope 0.2).
        gain: output scale (default sqrt(2) for "lrelu", 1 for "linear").
        clamp: clamp the output to ``[-clamp, clamp]`` (None: no clamp).
        precision: dot operands of the Triton path: "ieee", "tf32", "bf16" or "fp16"
            (default: from the activation dtype; fp32 follows ``cudnn.allow_tf32``).
        impl: "auto" ("cuda" on CUDA tensors, "cpp" on CPU tensors, else the
            reference), "ref", "triton" (``up=1`` with bf16/fp16/TF32 dots; never chosen
            by "auto": cuDNN was faster on the GPUs measured), "cuda" or "cpp" (the
            reference's convolutions with ``bias_lrelu``'s native epilogue on the
            tensors' device, where it computes the dtype).

    Returns:
        ``[N, O, H * up, W * up]``; channels-last memory from the Triton path, and from
        the reference on the CPU (``tri3d.ops._layout.conv_input``).
    """
    device = x.device if isinstance(x, Tensor) else torch.device("cpu")
    paths = {"triton": _triton_reason(x, weight, up, padding, explicit=impl == "triton"), "cuda": cuda_unavailable,
             "cpp": cpp_unavailable, "ref": always}
    epilogue = dict(bias=bias, noise=noise, noise_strength=noise_strength, activation=activation, gain=gain,
                    clamp=clamp)
    chosen = resolve_impl("modulated_conv2d", impl, device, paths)
    if chosen == "triton":
        return modulated_conv2d_fused(x, weight, styles, demodulate=demodulate, precision=precision, **epilogue)
    if chosen in ("cuda", "cpp"):
        return _modulated_conv2d_torch(x, weight, styles, demodulate=demodulate, up=up, padding=padding, **epilogue,
                                       epilogue_impl="auto")
    return modulated_conv2d_ref(x, weight, styles, demodulate=demodulate, up=up, padding=padding, **epilogue)
