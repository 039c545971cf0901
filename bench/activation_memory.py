"""Activation memory of ``triplane_decode`` at the bench's eg3d size, on any machine.

DESIGN.md's target for the fused path is >= 20x less activation memory than the reference:
the bytes autograd keeps for backward (``tri3d.utils.memory.SavedTensorBytes``, the planes
included), which do not depend on the device. The reference runs for real (about 6 GB on
the CPU); the fused op's kernel launch is replaced by an empty output, since what the op
saves does not depend on the values its kernel computes, so no GPU is needed.

Run: python bench/activation_memory.py
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are decorated

import torch  # noqa: E402

import tri3d.kernels.triplane_mlp as kernels  # noqa: E402
from tri3d.models import TriplaneDecoder  # noqa: E402
from tri3d.ops import planes_for_decode, triplane_decode  # noqa: E402
from tri3d.utils.memory import SavedTensorBytes  # noqa: E402

MB = 2**20
T, POINTS, RES, C, HIDDEN, N_HIDDEN, C_OUT = 8, 64 * 64 * 96, 256, 32, 64, 3, 32  # bench/test_bench_triplane.py


def saved_bytes(planes: torch.Tensor, xyz: torch.Tensor, decoder: torch.nn.Module, impl: str) -> int:
    """Bytes autograd saves in one ``triplane_decode`` forward with planes and decoder
    requiring gradients."""
    counter = SavedTensorBytes()
    with counter.count():
        triplane_decode(planes.detach().requires_grad_(), xyz, decoder, impl=impl)
    return counter.bytes


def main() -> int:
    g = torch.Generator().manual_seed(0)
    planes = torch.randn(T, 3, C, RES, RES, generator=g)
    xyz = torch.rand(T, POINTS, 3, generator=g) - 0.5
    decoder = TriplaneDecoder(C, HIDDEN, N_HIDDEN, C_OUT)
    kernels.triplane_mlp_forward = lambda planes_cl, coords, *args, n_out, **kw: coords.new_zeros(len(coords), n_out)
    ref = saved_bytes(planes, xyz, decoder, "ref")
    fused = saved_bytes(planes_for_decode(planes, impl="triton"), xyz, decoder, "triton")
    print(f"{T} triplanes 3 x {C} x {RES}^2 ({planes.numel() * 4 / MB:.0f} MB), {T} x {POINTS} points, "
          f"decoder {C} -> {HIDDEN} x {N_HIDDEN} -> {1 + C_OUT}")
    print("| path | saved for backward MB |\n|---|---:|")
    print(f"| ref | {ref / MB:.0f} |\n| fused | {fused / MB:.0f} |")
    print(f"\nfused keeps {ref / fused:.1f}x less (target >= 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
