"""Native compositor vs the reference: forward and forward+backward.

Size: 4096 rays x 96 samples x 32 channels per batch item, batch 8 on CUDA (cuda vs ref)
and 1 on the CPU (cpp vs ref, the CPU target's size). Records median ms, peak memory (CUDA), rays/s and,
on a known GPU, its DRAM floor (CUDA events, L2 flushed and gradients zeroed
before each round: ``timing.py``): forward reads (2 + C) x 4 bytes per sample and writes
(C + 1 + S - 1) x 4 per ray; backward reads the inputs and cotangents and writes
(1 + C) x 4 bytes per sample (every byte is compulsory; its flops are negligible).

Run: pytest bench/test_bench_composite.py --benchmark-json out.json
"""
from __future__ import annotations

import pytest
import torch

from tri3d.ops import composite

from roofline import composite_dram_bytes, floors, report
from timing import cuda_peak_mb, time_case

CUDA = torch.cuda.is_available()
B, R, S, C = 8 if CUDA else 1, 4096, 96, 32


def inputs():
    device = "cuda" if CUDA else "cpu"
    g = torch.Generator(device=device).manual_seed(0)
    sigma = torch.randn(B, R, S, 1, device=device, generator=g) * 3
    rgb = torch.rand(B, R, S, C, device=device, generator=g)
    depths = torch.sort(2 + torch.rand(B, R, S, 1, device=device, generator=g), dim=2).values
    return sigma, rgb, depths


@pytest.mark.parametrize("impl", ["ref", "native"])
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
def test_composite(benchmark, impl, mode):
    impl = ("cuda" if CUDA else "cpp") if impl == "native" else impl
    sigma, rgb, depths = inputs()
    sigma.requires_grad_(mode == "fwd+bwd")
    rgb.requires_grad_(mode == "fwd+bwd")
    cot = None

    def step():
        nonlocal cot
        outs = composite(sigma, rgb, depths, impl=impl)
        if mode == "fwd+bwd":
            if cot is None:
                cot = [torch.randn_like(o) for o in outs]
            torch.autograd.backward(outs, cot)

    def zero_grads():
        sigma.grad = rgb.grad = None

    step()
    peak_mb = cuda_peak_mb(step, zero_grads)
    timing = time_case(benchmark, step, rounds=20 if CUDA else 5, warmup=2 if CUDA else 1, setup=zero_grads)
    rays = B * R
    bytes_ = composite_dram_bytes(rays, S, C, backward=mode == "fwd+bwd")
    benchmark.extra_info.update(
        **timing, **report(timing["ms"], floors(bytes_, 0.0, "ieee")), peak_mb=peak_mb,
        rays_per_s=rays / (timing["ms"] * 1e-3), impl=impl, device=torch.cuda.get_device_name() if CUDA else "cpu",
    )
