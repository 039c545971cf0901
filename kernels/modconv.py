"""Fused modulated convolution (StyleGAN2, ``up=1``): Triton kernels and launch functions.

Forward, one implicit GEMM per sample with everything after it in the epilogue
(``t`` runs over the ``k x k`` taps, ``p + t`` is the tap's source pixel, zero outside):

    z[n, p, o] = d[n, o] * sum_{t, i} x[n, p + t, i] s[n, i] w[t, i, o] + noise[n, p] ns + b[o]
    y[n, p, o] = clamp(act(z) * gain)        act: leaky ReLU with slope ``alpha`` (1: linear)

The styles scale the weight tile as it is loaded (one multiply per weight element per
program instead of one per activation), the demodulation coefficients ``d`` scale the
accumulator. Backward, from the saved output ``y`` (the next layer keeps it anyway):

1. ``act``: ``gz = dL/dz = gy * gain * act'(y) * (|y| < clamp)`` plus per-program sums for
   the bias and noise-strength gradients (deterministic; reduced by the caller).
2. ``dgrad``: ``g_x[n, p, i] = s[n, i] * sum_{t, o} gz[n, p - t, o] d[n, o] w[t, i, o]``.
3. ``wgrad``: per sample and tap ``R[o, i] = sum_p gz[n, p, o] x[n, p + t, i]``, then
   ``g_w[t, o, i] += d s R``, ``g_s[n, i] += sum_o w d R`` and ``g_d[n, o] += sum_i w s R``
   (fp32 atomics, one per element per program). ``g_d`` reaches the styles and weight
   through the demodulation formula outside the kernels.

Layouts: activations channels-last ``[N, H, W, C]`` contiguous; weight ``[KK, I, O]`` fp32
(tap-major, ``tap = ky * k + kx``; the launchers make the ``[KK, O, I]`` copy the backward
reads, and 16-bit operand copies for 16-bit dots); styles ``[N, I]``, demodulation
``[N, O]``, bias ``[O]`` fp32; noise ``[N or 1, H, W]`` fp32.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from tri3d.kernels.common import COMPILE_OPTIONS, dot, kernel_precision


@triton.jit
def modconv_fwd_kernel(
    x_ptr,  # *T [N, H, W, I] input, channels-last
    w_ptr,  # *T or fp32 [KK, I, O] weight, tap-major (16-bit operands: in the activation dtype)
    s_ptr,  # *fp32 [N, I] styles
    d_ptr,  # *fp32 [N, O] demodulation coefficients (read when DEMOD)
    b_ptr,  # *fp32 [O] bias
    noise_ptr,  # *fp32 [N or 1, H, W] noise images (read when HAS_NOISE)
    ns_ptr,  # *fp32 [1] noise strength (read when HAS_NOISE)
    y_ptr,  # *T [N, H, W, O] output, channels-last
    H,  # image rows
    W,  # image columns
    I,  # input channels
    O,  # output channels
    KS,  # kernel size
    PAD,  # zero padding on each side
    noise_stride,  # elements between two samples' noise images (0: one shared image)
    alpha,  # leaky-ReLU slope (1.0: linear)
    gain,  # output gain
    clamp,  # bound on |y| (inf: none)
    DEMOD: tl.constexpr,  # scale output channels by d
    HAS_NOISE: tl.constexpr,  # add noise * noise strength
    PRECISION: tl.constexpr,  # dot operands: ieee | tf32 | bf16 | fp16 (| *_emulated)
    BLOCK_M: tl.constexpr,  # pixels per program
    BLOCK_O: tl.constexpr,  # output channels per program
    BLOCK_I: tl.constexpr,  # input channels per reduction step
):
    n = tl.program_id(2).to(tl.int64)
    HW = H * W
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    m_mask = offs_m < HW
    o_mask = offs_o < O
    row = offs_m // W
    col = offs_m % W
    n_iblk = tl.cdiv(I, BLOCK_I)
    acc = tl.zeros((BLOCK_M, BLOCK_O), dtype=tl.float32)
    for step in range(0, KS * KS * n_iblk):
        tap = step // n_iblk
        offs_i = (step % n_iblk) * BLOCK_I + tl.arange(0, BLOCK_I)
        i_mask = offs_i < I
        src_r = row + tap // KS - PAD
        src_c = col + tap % KS - PAD
        ok = m_mask & (src_r >= 0) & (src_r < H) & (src_c >= 0) & (src_c < W)
        pix = (n * H + src_r) * W + src_c
        xt = tl.load(x_ptr + pix[:, None] * I + offs_i[None, :], mask=ok[:, None] & i_mask[None, :], other=0.0)
        wt = tl.load(w_ptr + (tap * I + offs_i)[:, None] * O + offs_o[None, :],
                     mask=i_mask[:, None] & o_mask[None, :], other=0.0)
        st = tl.load(s_ptr + n * I + offs_i, mask=i_mask, other=0.0)
        acc += dot(xt, wt * st[:, None], PRECISION)
    if DEMOD:
        acc = acc * tl.load(d_ptr + n * O + offs_o, mask=o_mask, other=0.0)[None, :]
    if HAS_NOISE:
        nz = tl.load(noise_ptr + n * noise_stride + offs_m, mask=m_mask, other=0.0)
        acc += nz[:, None] * tl.load(ns_ptr)
    acc += tl.load(b_ptr + offs_o, mask=o_mask, other=0.0)[None, :]
    acc = tl.where(acc > 0, acc, acc * alpha) * gain
    acc = tl.clamp(acc, -clamp, clamp, propagate_nan=tl.PropagateNan.ALL)  # NaN stays NaN (torch.clamp does too)
    out = (n * HW + offs_m)[:, None] * O + offs_o[None, :]
    tl.store(y_ptr + out, acc.to(y_ptr.dtype.element_ty), mask=m_mask[:, None] & o_mask[None, :])


@triton.jit
def modconv_act_bwd_kernel(
    gy_ptr,  # *T [M, O] gradient w.r.t. the output (M = N * H * W rows)
    y_ptr,  # *T [M, O] forward output
    noise_ptr,  # *fp32 [N or 1, H, W] noise images (read when HAS_NOISE)
    gz_ptr,  # *T [M, O] out: gradient w.r.t. the pre-activation z
    gb_part_ptr,  # *fp32 [cdiv(M, BLOCK_M), O] out: per-program bias-gradient sums
    gns_part_ptr,  # *fp32 [cdiv(M, BLOCK_M), cdiv(O, BLOCK_O)] out: per-program noise-strength sums
    M,  # rows
    HW,  # pixels per sample
    O,  # channels
    noise_stride,  # elements between two samples' noise images
    alpha,  # leaky-ReLU slope
    gain,  # output gain
    clamp,  # bound on |y| (inf: none)
    HAS_NOISE: tl.constexpr,  # also reduce the noise-strength gradient
    BLOCK_M: tl.constexpr,  # rows per program
    BLOCK_O: tl.constexpr,  # channels per program
):
    pid_m = tl.program_id(0)
    pid_o = tl.program_id(1)
    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    o_mask = offs_o < O
    mask = (rows < M)[:, None] & o_mask[None, :]
    off = rows[:, None] * O + offs_o[None, :]
    gy = tl.load(gy_ptr + off, mask=mask, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + off, mask=mask, other=0.0).to(tl.float32)
    gz = gy * gain * tl.where(y > 0, 1.0, alpha)
    gz = tl.where(tl.abs(y) < clamp, gz, 0.0)
    tl.store(gz_ptr + off, gz.to(gz_ptr.dtype.element_ty), mask=mask)
    tl.store(gb_part_ptr + pid_m * O + offs_o, tl.sum(gz, axis=0), mask=o_mask)
    if HAS_NOISE:
        nz = tl.load(noise_ptr + (rows // HW) * noise_stride + rows % HW, mask=rows < M, other=0.0)
        tl.store(gns_part_ptr + pid_m * tl.num_programs(1) + pid_o, tl.sum(gz * nz[:, None]))


@triton.jit
def modconv_dgrad_kernel(
    gz_ptr,  # *T [N, H, W, O] gradient w.r.t. the pre-activation
    wt_ptr,  # *T or fp32 [KK, O, I] weight, tap-major, transposed
    s_ptr,  # *fp32 [N, I] styles
    d_ptr,  # *fp32 [N, O] demodulation coefficients (read when DEMOD)
    gx_ptr,  # *T [N, H, W, I] out: gradient w.r.t. the input
    H,  # image rows
    W,  # image columns
    I,  # input channels
    O,  # output channels
    KS,  # kernel size
    PAD,  # zero padding of the forward
    DEMOD: tl.constexpr,  # the forward scaled output channels by d
    PRECISION: tl.constexpr,  # dot operands
    BLOCK_M: tl.constexpr,  # pixels per program
    BLOCK_I: tl.constexpr,  # input channels per program
    BLOCK_O: tl.constexpr,  # output channels per reduction step
):
    n = tl.program_id(2).to(tl.int64)
    HW = H * W
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_i = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    m_mask = offs_m < HW
    i_mask = offs_i < I
    row = offs_m // W
    col = offs_m % W
    n_oblk = tl.cdiv(O, BLOCK_O)
    acc = tl.zeros((BLOCK_M, BLOCK_I), dtype=tl.float32)
    for step in range(0, KS * KS * n_oblk):
        tap = step // n_oblk
        offs_o = (step % n_oblk) * BLOCK_O + tl.arange(0, BLOCK_O)
        o_mask = offs_o < O
        dst_r = row - tap // KS + PAD  # output pixel that read this input pixel through this tap
        dst_c = col - tap % KS + PAD
        ok = m_mask & (dst_r >= 0) & (dst_r < H) & (dst_c >= 0) & (dst_c < W)
        pix = (n * H + dst_r) * W + dst_c
        gt = tl.load(gz_ptr + pix[:, None] * O + offs_o[None, :], mask=ok[:, None] & o_mask[None, :], other=0.0)
        wt = tl.load(wt_ptr + (tap * O + offs_o)[:, None] * I + offs_i[None, :],
                     mask=o_mask[:, None] & i_mask[None, :], other=0.0)
        if DEMOD:
            wt = wt * tl.load(d_ptr + n * O + offs_o, mask=o_mask, other=0.0)[:, None]
        acc += dot(gt, wt, PRECISION)
    acc = acc * tl.load(s_ptr + n * I + offs_i, mask=i_mask, other=0.0)[None, :]
    out = (n * HW + offs_m)[:, None] * I + offs_i[None, :]
    tl.store(gx_ptr + out, acc.to(gx_ptr.dtype.element_ty), mask=m_mask[:, None] & i_mask[None, :])


@triton.jit
def modconv_wgrad_kernel(
    gz_ptr,  # *T [N, H, W, O] gradient w.r.t. the pre-activation
    x_ptr,  # *T [N, H, W, I] forward input
    wt_ptr,  # *fp32 [KK, O, I] weight, tap-major, transposed
    s_ptr,  # *fp32 [N, I] styles
    d_ptr,  # *fp32 [N, O] demodulation coefficients (read when DEMOD)
    gw_ptr,  # *fp32 [KK, O, I] out (atomic): weight gradient
    gs_ptr,  # *fp32 [N, I] out (atomic): style gradient through the modulation
    gd_ptr,  # *fp32 [N, O] out (atomic, when DEMOD): demodulation-coefficient gradient
    H,  # image rows
    W,  # image columns
    I,  # input channels
    O,  # output channels
    KS,  # kernel size
    PAD,  # zero padding of the forward
    splits,  # programs sharing one sample's pixels (strided pixel blocks)
    DEMOD: tl.constexpr,  # the forward scaled output channels by d
    PRECISION: tl.constexpr,  # dot operands
    BLOCK_M: tl.constexpr,  # pixels per reduction step
    BLOCK_O: tl.constexpr,  # output channels per program
    BLOCK_I: tl.constexpr,  # input channels per program
):
    n = (tl.program_id(0) // splits).to(tl.int64)
    part = tl.program_id(0) % splits
    n_iblk = tl.cdiv(I, BLOCK_I)
    tap = tl.program_id(2) // n_iblk
    offs_o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    offs_i = (tl.program_id(2) % n_iblk) * BLOCK_I + tl.arange(0, BLOCK_I)
    o_mask = offs_o < O
    i_mask = offs_i < I
    HW = H * W
    acc = tl.zeros((BLOCK_O, BLOCK_I), dtype=tl.float32)
    for start in range(part * BLOCK_M, HW, splits * BLOCK_M):
        offs_m = start + tl.arange(0, BLOCK_M)
        m_mask = offs_m < HW
        src_r = offs_m // W + tap // KS - PAD
        src_c = offs_m % W + tap % KS - PAD
        ok = m_mask & (src_r >= 0) & (src_r < H) & (src_c >= 0) & (src_c < W)
        gt = tl.load(gz_ptr + (n * HW + offs_m)[:, None] * O + offs_o[None, :],
                     mask=m_mask[:, None] & o_mask[None, :], other=0.0)
        xt = tl.load(x_ptr + ((n * H + src_r) * W + src_c)[:, None] * I + offs_i[None, :],
                     mask=ok[:, None] & i_mask[None, :], other=0.0)
        acc += dot(tl.trans(gt), xt, PRECISION)
    tile = (tap * O + offs_o)[:, None] * I + offs_i[None, :]
    tile_mask = o_mask[:, None] & i_mask[None, :]
    wt = tl.load(wt_ptr + tile, mask=tile_mask, other=0.0)
    sr = acc * tl.load(s_ptr + n * I + offs_i, mask=i_mask, other=0.0)[None, :]
    if DEMOD:
        dc = tl.load(d_ptr + n * O + offs_o, mask=o_mask, other=0.0)
        tl.atomic_add(gd_ptr + n * O + offs_o, tl.sum(sr * wt, axis=1), mask=o_mask, sem="relaxed")
        tl.atomic_add(gs_ptr + n * I + offs_i, tl.sum(acc * wt * dc[:, None], axis=0), mask=i_mask, sem="relaxed")
        tl.atomic_add(gw_ptr + tile, sr * dc[:, None], mask=tile_mask, sem="relaxed")
    else:
        tl.atomic_add(gs_ptr + n * I + offs_i, tl.sum(acc * wt, axis=0), mask=i_mask, sem="relaxed")
        tl.atomic_add(gw_ptr + tile, sr, mask=tile_mask, sem="relaxed")


FWD_CONFIG = dict(block_m=64, block_o=64, block_i=32, num_warps=4)
DGRAD_CONFIG = dict(block_m=64, block_i=64, block_o=32, num_warps=4)
WGRAD_CONFIG = dict(block_m=32, block_o=64, block_i=64, num_warps=8)
ACT_CONFIG = dict(block_m=64, block_o=64, num_warps=8)


def _activation_args(alpha: float, gain: float, clamp: float | None) -> tuple[float, float, float]:
    return float(alpha), float(gain), math.inf if clamp is None else float(clamp)


def _operand_weight(weight: torch.Tensor, dtype: torch.dtype, precision: str) -> torch.Tensor:
    """The weight as a GEMM operand: in the 16-bit activation dtype when the dots take
    16-bit operands (half the weight traffic; the styles still scale it in fp32)."""
    return weight.to(dtype) if precision in ("bf16", "fp16") and dtype in (torch.bfloat16, torch.float16) else weight


def _check_layouts(x: torch.Tensor, weight: torch.Tensor, *others: torch.Tensor | None) -> None:
    tensors = (x, weight, *(t for t in others if t is not None))
    if not all(t.is_contiguous() for t in tensors):
        raise ValueError("modconv kernels need contiguous channels-last activations and [KK, ., .] weights")


def modconv_forward(
    x: torch.Tensor,  # [N, H, W, I] channels-last
    weight: torch.Tensor,  # [KK, I, O] fp32
    styles: torch.Tensor,  # [N, I] fp32
    demod: torch.Tensor | None,  # [N, O] fp32, or None (no demodulation)
    bias: torch.Tensor,  # [O] fp32
    noise: torch.Tensor | None,  # [N or 1, H, W] fp32
    noise_strength: torch.Tensor | None,  # [1] fp32
    *,
    kernel_size: int,
    padding: int,
    alpha: float,
    gain: float,
    clamp: float | None,
    precision: str,
    config: dict | None = None,
) -> torch.Tensor:  # [N, H, W, O]
    """Launch the fused forward; returns the channels-last output in ``x``'s dtype."""
    _check_layouts(x, weight, styles, demod, bias, noise)
    cfg = config or FWD_CONFIG
    N, H, W, I = x.shape
    O = weight.shape[2]
    y = torch.empty(N, H, W, O, device=x.device, dtype=x.dtype)
    if y.numel() == 0:
        return y
    grid = (triton.cdiv(H * W, cfg["block_m"]), triton.cdiv(O, cfg["block_o"]), N)
    has_noise = noise is not None
    modconv_fwd_kernel[grid](
        x, _operand_weight(weight, x.dtype, precision), styles, demod if demod is not None else styles, bias,
        noise if has_noise else styles, noise_strength if has_noise else styles, y,
        H, W, I, O, kernel_size, padding, (H * W if noise.shape[0] > 1 else 0) if has_noise else 0,
        *_activation_args(alpha, gain, clamp),
        DEMOD=demod is not None, HAS_NOISE=has_noise, PRECISION=kernel_precision(precision),
        BLOCK_M=cfg["block_m"], BLOCK_O=cfg["block_o"], BLOCK_I=cfg["block_i"], num_warps=cfg["num_warps"], **COMPILE_OPTIONS,
    )
    return y


def _wgrad_splits(x: torch.Tensor, base_programs: int, pixel_blocks: int) -> int:
    """Pixel splits per sample so the weight-gradient pass fills the GPU (4 programs per SM)."""
    target = 4 * torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 1
    return max(1, min(pixel_blocks, triton.cdiv(target, base_programs)))


def modconv_backward(
    grad_y: torch.Tensor,  # [N, H, W, O] channels-last
    y: torch.Tensor,  # [N, H, W, O] forward output
    x: torch.Tensor,  # [N, H, W, I] forward input
    weight: torch.Tensor,  # [KK, I, O] fp32
    styles: torch.Tensor,  # [N, I] fp32
    demod: torch.Tensor | None,  # [N, O] fp32
    noise: torch.Tensor | None,  # [N or 1, H, W] fp32
    *,
    kernel_size: int,
    padding: int,
    alpha: float,
    gain: float,
    clamp: float | None,
    precision: str,
    need_input_grad: bool = True,
    configs: dict | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """Launch the three backward passes. Returns ``(g_x [N, H, W, I] or None,
    g_weight [KK, I, O], g_styles [N, I], g_demod [N, O] or None, g_bias [O],
    g_noise_strength [1] or None)``, all fp32 except ``g_x`` (``x``'s dtype). ``configs``
    may replace the launch configuration of "act", "dgrad" and "wgrad"."""
    _check_layouts(x, weight, grad_y, y, styles, demod, noise)
    cfg = {"act": ACT_CONFIG, "dgrad": DGRAD_CONFIG, "wgrad": WGRAD_CONFIG} | (configs or {})
    N, H, W, I = x.shape
    KK, _, O = weight.shape
    M, HW, dev = N * H * W, H * W, x.device
    act_args = _activation_args(alpha, gain, clamp)
    prec = kernel_precision(precision)
    has_noise = noise is not None
    w_t = weight.transpose(1, 2).contiguous()  # [KK, O, I]
    g_w = torch.zeros(KK, O, I, device=dev, dtype=torch.float32)
    g_s = torch.zeros(N, I, device=dev, dtype=torch.float32)
    g_d = torch.zeros(N, O, device=dev, dtype=torch.float32) if demod is not None else None
    if M == 0:
        g_b = torch.zeros(O, device=dev)
        g_ns = torch.zeros(1, device=dev) if has_noise else None
        return (torch.zeros_like(x) if need_input_grad else None), g_w.transpose(1, 2), g_s, g_d, g_b, g_ns

    c = cfg["act"]
    grid_act = (triton.cdiv(M, c["block_m"]), triton.cdiv(O, c["block_o"]))
    gz = torch.empty_like(y)
    gb_part = torch.empty(grid_act[0], O, device=dev, dtype=torch.float32)
    gns_part = torch.empty(grid_act, device=dev, dtype=torch.float32)
    modconv_act_bwd_kernel[grid_act](
        grad_y, y, noise if has_noise else gb_part, gz, gb_part, gns_part,
        M, HW, O, (HW if noise.shape[0] > 1 else 0) if has_noise else 0, *act_args,
        HAS_NOISE=has_noise, BLOCK_M=c["block_m"], BLOCK_O=c["block_o"], num_warps=c["num_warps"], **COMPILE_OPTIONS,
    )
    g_b = gb_part.sum(dim=0)
    g_ns = gns_part.sum().reshape(1) if has_noise else None

    d_arg = demod if demod is not None else styles
    g_x = None
    if need_input_grad:
        c = cfg["dgrad"]
        g_x = torch.empty_like(x)
        modconv_dgrad_kernel[(triton.cdiv(HW, c["block_m"]), triton.cdiv(I, c["block_i"]), N)](
            gz, _operand_weight(w_t, x.dtype, precision), styles, d_arg, g_x, H, W, I, O, kernel_size, padding,
            DEMOD=demod is not None, PRECISION=prec,
            BLOCK_M=c["block_m"], BLOCK_I=c["block_i"], BLOCK_O=c["block_o"], num_warps=c["num_warps"], **COMPILE_OPTIONS,
        )

    c = cfg["wgrad"]
    base = (triton.cdiv(O, c["block_o"]), KK * triton.cdiv(I, c["block_i"]))
    splits = _wgrad_splits(x, N * base[0] * base[1], triton.cdiv(HW, c["block_m"]))
    modconv_wgrad_kernel[(N * splits, *base)](
        gz, x, w_t, styles, d_arg, g_w, g_s, g_d if g_d is not None else g_s,
        H, W, I, O, kernel_size, padding, splits,
        DEMOD=demod is not None, PRECISION=prec,
        BLOCK_M=c["block_m"], BLOCK_O=c["block_o"], BLOCK_I=c["block_i"], num_warps=c["num_warps"], **COMPILE_OPTIONS,
    )
    return g_x, g_w.transpose(1, 2), g_s, g_d, g_b, g_ns


def _pointer_types(fp32: tuple[str, ...], act: tuple[str, ...], act_dtype: str) -> dict[str, str]:
    return {n: "fp32" for n in fp32} | {n: act_dtype for n in act}


def kernel_specs(configs: dict | None = None) -> list:
    """The specializations the AOT compile check builds: k = 3 with demodulation and
    noise (synthesis layers) and k = 1 without (ToRGB), for bf16, fp16 and tf32 operands,
    at the launch defaults unless ``configs`` maps "fwd"/"dgrad"/"wgrad" to other ones."""
    from tri3d.kernels.aot import KernelSpec

    cfg = {"fwd": FWD_CONFIG, "dgrad": DGRAD_CONFIG, "wgrad": WGRAD_CONFIG} | (configs or {})
    sizes = {n: "i32" for n in ("H", "W", "I", "O", "KS", "PAD")}
    act = {"alpha": "fp32", "gain": "fp32", "clamp": "fp32"}
    specs = []
    for act_dtype, precision in (("bf16", "bf16"), ("fp16", "fp16"), ("fp32", "tf32")):
        for demod in (True, False):
            label = f"{'k3 demod' if demod else 'k1 torgb'} act={act_dtype} dot={precision}"
            flags = dict(DEMOD=demod, PRECISION=precision)
            f = cfg["fwd"]
            specs.append(KernelSpec(
                f"modconv fwd {label}", modconv_fwd_kernel,
                _pointer_types(("s_ptr", "d_ptr", "b_ptr", "noise_ptr", "ns_ptr"), ("x_ptr", "w_ptr", "y_ptr"),
                               act_dtype),
                sizes | act | {"noise_stride": "i32"},
                flags | dict(HAS_NOISE=demod, BLOCK_M=f["block_m"], BLOCK_O=f["block_o"], BLOCK_I=f["block_i"]),
                f["num_warps"],
            ))
            f = cfg["dgrad"]
            specs.append(KernelSpec(
                f"modconv dgrad {label}", modconv_dgrad_kernel,
                _pointer_types(("s_ptr", "d_ptr"), ("gz_ptr", "wt_ptr", "gx_ptr"), act_dtype), sizes,
                flags | dict(BLOCK_M=f["block_m"], BLOCK_I=f["block_i"], BLOCK_O=f["block_o"]), f["num_warps"],
            ))
            f = cfg["wgrad"]
            specs.append(KernelSpec(
                f"modconv wgrad {label}", modconv_wgrad_kernel,
                _pointer_types(("wt_ptr", "s_ptr", "d_ptr", "gw_ptr", "gs_ptr", "gd_ptr"), ("gz_ptr", "x_ptr"),
                               act_dtype),
                sizes | {"splits": "i32"},
                flags | dict(BLOCK_M=f["block_m"], BLOCK_O=f["block_o"], BLOCK_I=f["block_i"]), f["num_warps"],
            ))
        c = ACT_CONFIG
        specs.append(KernelSpec(
            f"modconv act-bwd act={act_dtype}", modconv_act_bwd_kernel,
            _pointer_types(("noise_ptr", "gb_part_ptr", "gns_part_ptr"), ("gy_ptr", "y_ptr", "gz_ptr"), act_dtype),
            {"M": "i32", "HW": "i32", "O": "i32", "noise_stride": "i32"} | act,
            dict(HAS_NOISE=True, BLOCK_M=c["block_m"], BLOCK_O=c["block_o"]), c["num_warps"],
        ))
    return specs
