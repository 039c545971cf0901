"""The C++ triplane sampling path (csrc/triplane_cpu.cpp) against the grid_sample reference."""
from __future__ import annotations

import pytest
import torch

from tri3d.models import TriplaneDecoder
from tri3d.ops import sample_triplane, triplane_decode
from tri3d.ops.triplane import _decode_impl, planes_for_decode, sample_triplane_native_forward
from tri3d.testing import FLOORS, assert_fused_close


def inputs(T, C, H, W, B, N, box_warp, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    planes = torch.randn(T, 3, C, H, W, generator=g, dtype=dtype)
    # Mostly inside the box, some outside: those read zeros or a partial border.
    xyz = (torch.rand(B, N, 3, generator=g, dtype=dtype) - 0.5) * box_warp * 1.3
    return planes, xyz


def outputs_and_grads(impl, planes, xyz, cot, **kw):
    p, x = planes.detach().requires_grad_(), xyz.detach().requires_grad_()
    out = sample_triplane(p, x, impl=impl, **kw)
    return [out, *torch.autograd.grad(out, [p, x], cot.to(out.dtype))]


@pytest.mark.parametrize("C", [1, 5, 16, 35])
@pytest.mark.parametrize("plane_axes", ["xyz", "eg3d"])
@pytest.mark.parametrize("indexed", [False, True])
def test_matches_fp64_reference(native_ext, C, plane_axes, indexed):
    """Features and both gradients (planes and points), H != W, points inside and outside
    the box, with and without a per-point triplane index (which groups points out of order)."""
    T, B, N, box_warp = 3, 3, 41, 1.7
    planes, xyz = inputs(T, C, 7, 9, B, N, box_warp, seed=C * 10 + indexed)
    kw = dict(box_warp=box_warp, plane_axes=plane_axes)
    if indexed:
        kw["plane_index"] = torch.randint(0, T, (B, N), generator=torch.Generator().manual_seed(C))
    cot = torch.randn(B, N, C, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    ref64 = outputs_and_grads("ref", planes.double(), xyz.double(), cot, **kw)
    ref32 = outputs_and_grads("ref", planes, xyz, cot, **kw)
    cpp = outputs_and_grads("cpp", planes, xyz, cot, **kw)
    for name, a, r, r64 in zip(["features", "grad planes", "grad xyz"], cpp, ref32, ref64):
        assert a.dtype == torch.float32
        assert_fused_close(a, r, r64, FLOORS["fp32"], name)


def test_gradients_do_not_depend_on_the_thread_count(native_ext):
    """The plane gradient is gathered per (triplane, plane) in point order: the same bits
    with 1 thread and with 3, also with several triplanes' points interleaved."""
    planes, xyz = inputs(2, 16, 8, 8, 2, 3000, 1.0, seed=8)
    index = torch.randint(0, 2, (2, 3000), generator=torch.Generator().manual_seed(9))
    cot = torch.randn(2, 3000, 16, generator=torch.Generator().manual_seed(10))
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            results.append(outputs_and_grads("cpp", planes, xyz, cot, plane_index=index))
    finally:
        torch.set_num_threads(threads)
    for name, a, b in zip(["features", "grad planes", "grad xyz"], *results):
        assert torch.equal(a, b), name


def test_fp64_gradcheck(native_ext):
    planes, xyz = inputs(2, 3, 4, 5, 2, 6, 1.0, seed=3, dtype=torch.float64)
    planes.requires_grad_()
    xyz = (xyz * 0.7).requires_grad_()  # inside the planes, away from the zero padding's kinks
    assert torch.autograd.gradcheck(lambda p, x: sample_triplane(p, x, impl="cpp"), (planes, xyz))


def test_points_outside_read_zero_and_get_no_gradient(native_ext):
    planes = torch.randn(1, 3, 4, 6, 6)
    xyz = torch.tensor([[[0.9, 0.9, 0.9], [-2.0, 3.0, -1.0], [1e30, -1e30, 0.0]]], requires_grad=True)
    planes.requires_grad_()
    out = sample_triplane(planes, xyz, impl="cpp")
    assert out.abs().max() == 0
    g_planes, g_xyz = torch.autograd.grad(out, [planes, xyz], torch.randn(1, 3, 4))
    assert g_planes.abs().max() == 0 and g_xyz.abs().max() == 0


def test_no_points_give_what_the_reference_gives(native_ext):
    planes = torch.randn(2, 3, 4, 5, 5, requires_grad=True)
    xyz = torch.zeros(2, 0, 3, requires_grad=True)
    for impl in ("ref", "cpp"):
        out = sample_triplane(planes, xyz, impl=impl)
        assert out.shape == (2, 0, 4)
        g_planes, g_xyz = torch.autograd.grad(out.sum(), [planes, xyz])
        assert g_planes.abs().max() == 0 and g_xyz.shape == (2, 0, 3)


def test_decode_path_reads_channels_last_planes(native_ext):
    """``auto`` on the CPU takes the C++ path; ``planes_for_decode`` lays the planes out as
    it reads them, and the planes' gradient comes back through that layout."""
    assert _decode_impl("auto", torch.device("cpu")) == "cpp"
    planes, xyz = inputs(2, 8, 6, 6, 2, 29, 1.0, seed=4, dtype=torch.float64)
    dec = TriplaneDecoder(in_features=8, hidden=16, n_hidden=3, out_features=3).double()
    cot = torch.randn(2, 29, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    results = []
    for impl in ("ref", "cpp"):
        p = planes.detach().requires_grad_()
        laid_out = planes_for_decode(p, impl=impl)
        sigma, rgb = triplane_decode(laid_out, xyz, dec, impl=impl)
        out = torch.cat([sigma, rgb], dim=-1)
        results.append((out, torch.autograd.grad(out, p, cot)[0], laid_out))
    (out_ref, g_ref, _), (out_cpp, g_cpp, laid_out) = results
    assert laid_out.permute(0, 1, 3, 4, 2).is_contiguous()
    torch.testing.assert_close(out_cpp, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_cpp, g_ref, rtol=1e-12, atol=1e-12)


def test_half_planes_are_sampled_in_fp32_and_returned_in_their_dtype(native_ext):
    """fp32 coordinates and sums (the reference rounds the coordinates to the planes'
    dtype, as grid_sample needs on a GPU): the exact sample of the rounded planes, rounded."""
    planes, xyz = inputs(1, 4, 5, 5, 1, 13, 1.0, seed=6)
    half = planes.bfloat16()
    out = sample_triplane(half, xyz, impl="cpp")
    assert out.dtype == torch.bfloat16
    exact = sample_triplane(half.double(), xyz.double(), impl="ref")
    torch.testing.assert_close(out, exact.bfloat16(), rtol=4e-3, atol=0)  # one bf16 rounding


def test_native_call_refuses_a_triplane_index_out_of_range(native_ext):
    """The C++ side checks the index itself (the public op checks it first in Python)."""
    planes_cl = torch.randn(2, 3, 4, 4, 3)
    xyz = torch.zeros(5, 3)
    for bad in (2, -1):
        plane_of = torch.tensor([0, 1, bad, 0, 1])
        with pytest.raises(ValueError, match=r"plane_index must lie in \[0, 2\)"):
            sample_triplane_native_forward(planes_cl, xyz, plane_of, (0, 1, 0, 2, 1, 2), 1.0)
    with pytest.raises(ValueError, match="plane_index must have shape"):
        sample_triplane_native_forward(planes_cl, xyz, torch.zeros(4, dtype=torch.int64), (0, 1, 0, 2, 1, 2), 1.0)
