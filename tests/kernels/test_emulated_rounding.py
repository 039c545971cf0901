"""The interpreter's emulation of bf16 dot operands rounds as a GPU does."""
from __future__ import annotations

import pytest
import torch

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

from tri3d.kernels.common import bf16_round  # noqa: E402


@triton.jit
def _round_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, bf16_round(tl.load(x_ptr + offs, mask=offs < n)), mask=offs < n)


def test_bf16_round_is_round_to_nearest_even(interpreter_device):
    """Against torch's fp32 -> bf16 cast (round to nearest, ties to even) on random values,
    exact ties of both parities, values just beside them, subnormals, zeros, the largest
    finite values (which round to infinity) and infinities."""
    g = torch.Generator().manual_seed(0)
    ties = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 3 * 2**-9 * 2**-130, 2.5 * 2**-133])
    x = torch.cat([torch.randn(3000, generator=g) * 10, torch.randn(1000, generator=g) * 1e-39, ties,
                   torch.tensor([0.0, -0.0, 3.4028235e38, -3.4028235e38, float("inf"), -float("inf")])])
    x = torch.cat([x, torch.nextafter(x, torch.tensor(float("inf"))), torch.nextafter(x, torch.tensor(-float("inf")))])
    y = torch.empty_like(x)
    _round_kernel[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), BLOCK=1024)
    assert torch.equal(y, x.to(torch.bfloat16).float())
