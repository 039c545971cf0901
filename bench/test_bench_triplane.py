"""Fused triplane sample + decode vs the reference: forward and forward+backward.

Sizes: "small" (runs everywhere; the Triton path under the interpreter on CPU), "tiny"
(the points of one decode call of the ``tiny`` preset's training step, 8 x 2 views x 16^2
rays x 12 samples on 32^2 planes, with this suite's decoder; the reference and the C++
path, the CPU's training paths) and "eg3d" (EG3D training scale: batch 8, 64x64 rays x 96
samples, planes 3x32x256x256, decoder 32 -> 64 x3 -> 33; CUDA only). The C++ path
(``impl="cpp"``: sampling in C++, the decoder in PyTorch) runs on the CPU only. Each case records in ``extra_info``: median ms
(CUDA events, L2 flushed and gradients zeroed before each round: ``timing.py``), peak
memory over the inputs (MB), activation memory (``saved_mb``: the storages autograd saves
for backward, the planes included; any device), points/s, and its DRAM and compute floors.

The reference runs at the fused path's precision too: "ref-tf32" lets cuBLAS use TF32
(``torch.backends.cuda.matmul.allow_tf32``), so tf32 fused vs tf32 reference is a
like-for-like pair beside the exact fp32 reference.

Cost model per point (C channels, hidden width Hd, n hidden layers, O outputs, plane
element size e): the forward does 2 x (C Hd + (n-1) Hd^2 + Hd O) flops; forward+backward
adds the backward's recomputed forward and its two gradient products: 5x the MLP flops
more. Compulsory DRAM traffic reads the planes, 12 bytes of coordinates per point and
writes 4 x O bytes of output per point per pass, and writes the fp32 plane gradient once
(``roofline.triplane_decode_dram_bytes``).

Run: pytest bench/test_bench_triplane.py --benchmark-json out.json
"""
from __future__ import annotations

import pytest
import torch

from tri3d.models import TriplaneDecoder
from tri3d.ops import triplane_decode
from tri3d.utils.memory import SavedTensorBytes

from roofline import floors, report, triplane_decode_dram_bytes
from timing import cuda_peak_mb, time_case

CUDA = torch.cuda.is_available()
SIZES = {
    "small": dict(B=2, N=1000, res=32, n_hidden=3),
    "tiny": dict(B=8, N=2 * 16 * 16 * 12, res=32, n_hidden=3),
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
    """``(DRAM bytes, flops)`` of a case (module docstring)."""
    P = cfg["B"] * cfg["N"]
    mlp = 2 * (C * HIDDEN + (cfg["n_hidden"] - 1) * HIDDEN**2 + HIDDEN * (1 + C_OUT))
    flops = P * mlp * (6 if backward else 1)
    dram = triplane_decode_dram_bytes(P, cfg["B"], cfg["res"], cfg["res"], C, 1 + C_OUT, elem, backward)
    return dram, flops


@pytest.mark.parametrize("size", ["small", "tiny", "eg3d"])
@pytest.mark.parametrize("impl, precision, dtype", [
    ("ref", "ieee", torch.float32),
    ("ref", "tf32", torch.float32),
    ("cpp", "ieee", torch.float32),
    ("triton", "tf32", torch.float32),
    ("triton", "bf16", torch.bfloat16),
], ids=["ref-fp32", "ref-tf32", "cpp-fp32", "triton-fp32-tf32", "triton-bf16"])
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
def test_triplane_decode(benchmark, monkeypatch, size, impl, precision, dtype, mode):
    if size == "eg3d" and not CUDA:
        pytest.skip("EG3D-scale sizes need a GPU")
    if impl == "cpp" and CUDA:
        pytest.skip("the C++ path runs on CPU tensors")
    if size == "tiny" and impl == "triton" and not CUDA:
        pytest.skip("the interpreter's timings mean nothing, and at this size it takes minutes")
    if impl == "ref" and precision == "tf32" and not CUDA:
        pytest.skip("TF32 matmuls exist only on a GPU")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", impl == "ref" and precision == "tf32")
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

    def zero_grads():
        planes.grad = None
        decoder.zero_grad(set_to_none=True)

    saved = SavedTensorBytes()
    with saved.count():  # activation memory: what autograd keeps for backward (planes included)
        step()  # compile / warm up
    peak_mb = cuda_peak_mb(step, zero_grads)
    timing = time_case(benchmark, step, rounds=20 if CUDA else 3, warmup=2 if CUDA else 0, setup=zero_grads)
    points = cfg["B"] * cfg["N"]
    floor = floors(*model_cost(cfg, planes.element_size(), mode == "fwd+bwd"), precision)
    benchmark.extra_info.update(
        **timing, **report(timing["ms"], floor), peak_mb=peak_mb, points_per_s=points / (timing["ms"] * 1e-3),
        saved_mb=saved.bytes / 2**20 if mode == "fwd+bwd" else None,
        impl=impl, precision=precision, device=torch.cuda.get_device_name() if CUDA else "cpu",
    )
