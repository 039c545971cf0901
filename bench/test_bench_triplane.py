"""Fused triplane sample + decode vs the reference: forward and forward+backward.

Sizes: "small" (runs everywhere; the Triton path under the interpreter on CPU) and
"eg3d" (EG3D training scale: batch 8, 64x64 rays x 96 samples, planes 3x32x256x256,
decoder 32 -> 64 x3 -> 33; CUDA only). Each case records in ``extra_info``: median ms,
peak memory over the inputs (MB), points/s, and the fraction of the roofline floor.

Roofline model per point (C channels, hidden width Hd, n hidden layers, O outputs,
plane element size e): forward reads 3 planes x 4 texels x C x e bytes plus 12 bytes of
coordinates and writes 4 x O bytes, and does 2 x (C Hd + (n-1) Hd^2 + Hd O) flops.
Forward+backward adds two recomputing passes (weight and plane gradients): 2x the
forward gather, 12 x C x 4 bytes of fp32 atomics, and 2 + 3 times the MLP flops.

Run: pytest bench/test_bench_triplane.py --benchmark-json out.json
"""
from __future__ import annotations

import pytest
import torch

from tri3d.models import TriplaneDecoder
from tri3d.ops import triplane_decode

from roofline import floor_seconds

CUDA = torch.cuda.is_available()
SIZES = {
    "small": dict(B=2, N=1000, res=32, n_hidden=3),
    "eg3d": dict(B=8, N=64 * 64 * 96, res=256, n_hidden=3),
}
C, HIDDEN, C_OUT = 32, 64, 32


def make_inputs(size: str, dtype: torch.dtype):
    cfg = SIZES[size]
    device = "cuda" if CUDA else "cpu"
    g = torch.Generator(device=device).manual_seed(0)
    planes = torch.randn(cfg["B"], 3, C, cfg["res"], cfg["res"], device=device, generator=g).to(dtype)
    xyz = torch.rand(cfg["B"], cfg["N"], 3, device=device, generator=g) - 0.5
    torch.manual_seed(0)
    decoder = TriplaneDecoder(C, HIDDEN, cfg["n_hidden"], C_OUT).to(device)
    return planes, xyz, decoder, cfg


def model_cost(cfg, elem: int, backward: bool) -> tuple[float, float]:
    P = cfg["B"] * cfg["N"]
    mlp = 2 * (C * HIDDEN + (cfg["n_hidden"] - 1) * HIDDEN**2 + HIDDEN * (1 + C_OUT))
    gather = 3 * 4 * C * elem
    bytes_, flops = P * (gather + 12 + 4 * (1 + C_OUT)), P * mlp
    if backward:
        bytes_ += P * (2 * gather + 12 * C * 4 + 4 * (1 + C_OUT) * 2)
        flops += P * mlp * 5
    return bytes_, flops


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


@pytest.mark.parametrize("size", ["small", "eg3d"])
@pytest.mark.parametrize("impl, precision, dtype", [
    ("ref", "ieee", torch.float32),
    ("triton", "tf32", torch.float32),
    ("triton", "bf16", torch.bfloat16),
], ids=["ref-fp32", "triton-fp32-tf32", "triton-bf16"])
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
def test_triplane_decode(benchmark, size, impl, precision, dtype, mode):
    if size == "eg3d" and not CUDA:
        pytest.skip("EG3D-scale sizes need a GPU")
    planes, xyz, decoder, cfg = make_inputs(size, dtype)
    planes.requires_grad_(mode == "fwd+bwd")
    grad = None

    def step():
        sigma, rgb = triplane_decode(planes, xyz, decoder, impl=impl, precision=precision)
        if mode == "fwd+bwd":
            nonlocal grad
            if grad is None:
                grad = (torch.randn_like(sigma), torch.randn_like(rgb))
            torch.autograd.backward((sigma, rgb), grad)
        sync()

    step()  # compile / warm up
    if CUDA:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mb = None
    rounds = 20 if CUDA else 3
    benchmark.pedantic(step, rounds=rounds, warmup_rounds=2 if CUDA else 0, iterations=1)
    median = benchmark.stats.stats.median
    points = cfg["B"] * cfg["N"]
    bytes_, flops = model_cost(cfg, planes.element_size(), mode == "fwd+bwd")
    floor = floor_seconds(bytes_, flops, precision if impl == "triton" else "ieee")
    benchmark.extra_info.update(
        ms=median * 1e3,
        peak_mb=peak_mb,
        points_per_s=points / median,
        roofline_floor_ms=None if floor is None else floor * 1e3,
        roofline_fraction=None if floor is None else floor / median,
        device=torch.cuda.get_device_name() if CUDA else "cpu",
    )
