"""Helpers shared by the Triton kernels: the dot-operand precision switch."""
from __future__ import annotations

import os

import triton
import triton.language as tl

DOT_PRECISIONS = ("ieee", "tf32", "bf16", "fp16")


TF32_MASK = tl.constexpr(-8192)  # 0xFFFFE000: sign, exponent and the 10 mantissa bits tf32 keeps


@triton.jit
def tf32_truncate(x):
    """fp32 values with the 13 low mantissa bits cleared: a tf32 tensor core's view of them."""
    return (x.to(tl.float32).to(tl.int32, bitcast=True) & TF32_MASK).to(tl.float32, bitcast=True)


@triton.jit
def dot(a, b, PRECISION: tl.constexpr):
    """``a @ b`` with fp32 accumulation; PRECISION picks the operand format."""
    if PRECISION == "bf16":
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), out_dtype=tl.float32)
    elif PRECISION == "fp16":
        return tl.dot(a.to(tl.float16), b.to(tl.float16), out_dtype=tl.float32)
    elif PRECISION == "bf16_emulated":  # bf16 rounding of the operands, fp32 dot (interpreter)
        return tl.dot(a.to(tl.bfloat16).to(tl.float32), b.to(tl.bfloat16).to(tl.float32), input_precision="ieee")
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
