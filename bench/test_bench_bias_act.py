"""Native bias_act (one pass forward, one backward over bias_act.h's core) vs the
reference chain of torch ops: forward and forward+backward.

Size: a synthesis layer's epilogue, bias + leaky ReLU + gain + clamp 256 (StyleGAN2's
conv_clamp) with a bias gradient: [8, 128, 128, 128] NCHW on CUDA (cuda vs ref) and
`tiny`'s largest, [8, 64, 32, 32] channels-last, on the CPU (cpp vs ref). Records median
ms, peak memory (CUDA), elements/s and, on a known GPU, the DRAM floor of the bytes every
path must move (``roofline.bias_act_dram_bytes``; timing: ``timing.py``).

Run: pytest bench/test_bench_bias_act.py --benchmark-json out.json
"""
from __future__ import annotations

import pytest
import torch

from tri3d.ops import bias_lrelu

from roofline import bias_act_dram_bytes, floors, report
from timing import cuda_peak_mb, time_case

CUDA = torch.cuda.is_available()
SHAPE = (8, 128, 128, 128) if CUDA else (8, 64, 32, 32)
CLAMP = 256.0


def inputs():
    device = "cuda" if CUDA else "cpu"
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(SHAPE, device=device, generator=g)
    if not CUDA:
        x = x.contiguous(memory_format=torch.channels_last)  # the CPU convolutions' layout (tri3d.ops._layout)
    return x, torch.randn(SHAPE[1], device=device, generator=g)


@pytest.mark.parametrize("impl", ["ref", "native"])
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
def test_bias_act(benchmark, impl, mode):
    impl = ("cuda" if CUDA else "cpp") if impl == "native" else impl
    x, b = inputs()
    x.requires_grad_(mode == "fwd+bwd")
    b.requires_grad_(mode == "fwd+bwd")
    cot = torch.randn_like(x) if mode == "fwd+bwd" else None

    def step():
        y = bias_lrelu(x, b, clamp=CLAMP, impl=impl)
        if cot is not None:
            y.backward(cot)

    def zero_grads():
        x.grad = b.grad = None

    step()
    peak_mb = cuda_peak_mb(step, zero_grads)
    timing = time_case(benchmark, step, rounds=20 if CUDA else 10, warmup=2, setup=zero_grads)
    n = x.numel()
    benchmark.extra_info.update(
        **timing, **report(timing["ms"], floors(bias_act_dram_bytes(n, backward=mode == "fwd+bwd"), 0.0, "ieee")),
        peak_mb=peak_mb, elements_per_s=n / (timing["ms"] * 1e-3), impl=impl,
        device=torch.cuda.get_device_name() if CUDA else "cpu",
    )
