"""Helpers shared by the Triton kernels: the dot-operand precision switch and cheap
activations (softplus from one exp2 / log2 pair, its slope from its value)."""
from __future__ import annotations

import os

import triton
import triton.language as tl

DOT_PRECISIONS = ("ieee", "tf32", "bf16", "fp16")
# Compile options of every launch and of the AOT report: multiplies and adds contracted to
# FMAs. Triton up to 3.9 does so by default and warns that 3.10 will not; without them the
# triplane kernels take 670 warp-instructions per point fwd + bwd instead of 574 (tf32, 3
# hidden layers, sm_90 SASS model) and the backward spills 64 bytes instead of 40.
COMPILE_OPTIONS = dict(enable_fp_fusion=True)


TF32_MASK = tl.constexpr(-8192)  # 0xFFFFE000: sign, exponent and the 10 mantissa bits tf32 keeps


@triton.jit
def tf32_truncate(x):
    """fp32 values with the 13 low mantissa bits cleared: a tf32 tensor core's view of them."""
    return (x.to(tl.float32).to(tl.int32, bitcast=True) & TF32_MASK).to(tl.float32, bitcast=True)


@triton.jit
def bf16_round(x):
    """fp32 values rounded to the nearest bf16 (ties to even), kept in fp32: what
    ``x.to(tl.bfloat16)`` gives on a GPU. Triton's interpreter casts fp32 to bf16 by
    dropping the low 16 bits instead (measured on Triton 3.9), so the emulated bf16 dots
    round their operands with this."""
    bits = x.to(tl.float32).to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def dot(a, b, PRECISION: tl.constexpr):
    """``a @ b`` with fp32 accumulation; PRECISION picks the operand format."""
    if PRECISION == "bf16":
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), out_dtype=tl.float32)
    elif PRECISION == "fp16":
        return tl.dot(a.to(tl.float16), b.to(tl.float16), out_dtype=tl.float32)
    elif PRECISION == "bf16_emulated":  # bf16 rounding of the operands, fp32 dot (interpreter)
        return tl.dot(bf16_round(a), bf16_round(b), input_precision="ieee")
    elif PRECISION == "tf32_emulated":  # what tf32 tensor cores do: operands truncated, fp32 dot
        return tl.dot(tf32_truncate(a), tf32_truncate(b), input_precision="ieee")
    elif PRECISION == "fp16_emulated":
        return tl.dot(a.to(tl.float16).to(tl.float32), b.to(tl.float16).to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision=PRECISION)


def kernel_precision(precision: str, allowed: tuple[str, ...] = DOT_PRECISIONS) -> str:
    """The PRECISION constexpr for a requested precision. Triton's interpreter multiplies
    16-bit operands wrongly, so there they are rounded and multiplied in fp32; it computes
    tf32 dots in full fp32, so there tf32 operands are truncated as tensor cores do."""
    if precision not in allowed:
        raise ValueError(f"precision must be one of {allowed}, got {precision!r}")
    if precision in ("bf16", "fp16", "tf32") and os.environ.get("TRITON_INTERPRET", "0") == "1":
        return precision + "_emulated"
    return precision


LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)


def fast_math() -> bool:
    """Whether kernels may use the GPU's approximate transcendentals (``lg2.approx``,
    ``rcp.approx``: one MUFU instruction each, relative error ~2^-22). The interpreter runs
    no inline PTX, so there the exact ``tl`` functions stand in."""
    return os.environ.get("TRITON_INTERPRET", "0") != "1"


@triton.jit
def _ptx_f32(x, ASM: tl.constexpr):
    """One fp32 -> fp32 PTX instruction ``ASM`` (``"op $0, $1;"``), element-wise."""
    return tl.inline_asm_elementwise(ASM, "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def log2(x, FAST_MATH: tl.constexpr):
    """``log2(x)`` of fp32 ``x``: ``lg2.approx`` (libdevice's ``log2f`` is ~25 instructions)."""
    if FAST_MATH:
        return _ptx_f32(x, "lg2.approx.f32 $0, $1;")
    else:
        return tl.log2(x)


@triton.jit
def reciprocal(x, FAST_MATH: tl.constexpr):
    """``1 / x`` of fp32 ``x``: ``rcp.approx`` (a division is a MUFU.RCP plus a correction)."""
    if FAST_MATH:
        return _ptx_f32(x, "rcp.approx.f32 $0, $1;")
    else:
        return 1.0 / x


@triton.jit
def softplus_slope(a):
    """``sigmoid(x)`` from ``a = softplus(x)``: ``1 - exp(-a)`` (one ``exp2``), so a backward
    pass keeps only the activations. Absolute error ~1e-7 (where sigmoid is tiny it is
    computed as 0)."""
    return 1.0 - tl.exp2(-a * LOG2E)


@triton.jit
def softplus(x, FAST_MATH: tl.constexpr):
    """``softplus(x) = max(x, 0) + log(1 + exp(-|x|))`` from one ``exp2`` and one ``log2``."""
    return tl.maximum(x, 0.0) + log2(1.0 + tl.exp2(-tl.abs(x) * LOG2E), FAST_MATH) * LN2


@triton.jit
def sigmoid(x, FAST_MATH: tl.constexpr):
    """``sigmoid(x)`` from one ``exp2`` and one reciprocal (no overflow for any ``x``)."""
    e = tl.exp2(-tl.abs(x) * LOG2E)
    r = reciprocal(1.0 + e, FAST_MATH)
    return tl.where(x >= 0, r, e * r)
