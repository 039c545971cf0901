"""The no-build CUDA path (``tri3d._nvrtc``): every kernel compiles under NVRTC with the
runtime's options (no GPU needed), launches pass the kernels' parameters in their
declared order with the declared launch shapes, the CUDA path falls back to it, and on a
GPU it agrees with the reference."""
from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys

import pytest
import torch

from tri3d import _backend, _nvrtc
from tri3d.ops import bias_lrelu, composite, importance_depths, merge_samples, modulated_conv2d, modulated_conv2d_ref
from tri3d.testing import FLOORS, SYNTHESIS_LAYER_RESULTS, assert_fused_close, synthesis_layer_case


def _libnvrtc_or_skip():
    try:
        return _nvrtc.libnvrtc()
    except RuntimeError as err:
        if os.environ.get("TRI3D_REQUIRE_NATIVE") == "1":  # CI installs nvidia-cuda-nvrtc-cu12 ([test])
            raise
        pytest.skip(str(err))


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_every_kernel_compiles_under_nvrtc(arch):
    _libnvrtc_or_skip()
    ptx, lowered = _nvrtc.compile_ptx(arch)
    assert f".target {arch}" in ptx
    assert sorted(lowered) == sorted(_nvrtc.name_expressions())
    for name, mangled in lowered.items():
        assert re.search(rf"\.entry {re.escape(mangled)}\s*\(", ptx), f"{name} has no kernel entry in the PTX"


def _kernel_parameters() -> dict[str, list[str]]:
    """Parameter names of every ``__global__`` kernel, read from the source."""
    text = (_nvrtc.SOURCE_DIR / "kernels.cuh").read_text()
    found = {}
    for name, params in re.findall(r"__global__ void (?:__launch_bounds__\([^)]*\)\s*)?(\w+)\(([^)]*)\)", text):
        found[name] = [p.split()[-1].lstrip("*") for p in params.split(",")]
    return found


CALLS = {  # entry point -> the kernel it launches
    "composite_forward": "composite_forward_kernel",
    "composite_backward": "composite_backward_kernel",
    "importance": "importance_kernel",
    "merge_sorted": "merge_sorted_kernel",
    "bias_act_forward": "bias_act_forward_kernel",
    "bias_act_backward": "bias_act_backward_kernel",
}
SIZES = ("M", "S", "C", "n", "outer", "inner")  # passed as i64; the activation's constants as the kernel's T
REALS = ("alpha", "gain", "clamp")


@pytest.mark.parametrize("entry", sorted(CALLS))
def test_launch_passes_the_kernel_parameters_in_order(entry):
    launches = []
    kernels = _nvrtc.NvrtcKernels(launch=lambda *call: launches.append(call))
    method = getattr(kernels, entry)
    params = [p for p in inspect.signature(method).parameters if p not in ("device", "dtype", "stream")]
    values = {p: 1000 + 7 * i for i, p in enumerate(params)}  # distinct values: a swap shows
    if entry == "merge_sorted":
        values["n"] = 77  # within kMergeMaxFine, still distinct
    if entry.startswith("bias_act"):  # a leaky ReLU without the clamp: flags = 0
        values.update(linear=False, clamped=False)
    method("cuda", "float64", **values, stream=55)
    (kernel, dtype, grid, block, named, stream), = launches
    assert (kernel, dtype, stream) == (CALLS[entry], "float64", 55)
    declared = _kernel_parameters()[kernel]
    assert [n for n, _, _ in named] == declared
    assert [v for _, _, v in named] == [0 if n == "flags" else values[n] for n in declared]
    kinds = {n: "i64" if n in SIZES else "real" if n in REALS else "i32" if n == "flags" else "ptr" for n in declared}
    assert all(kind == kinds[n] for n, kind, _ in named)


def test_launch_shapes_cover_every_ray_once():
    launches = []
    kernels = _nvrtc.NvrtcKernels(launch=lambda *call: launches.append(call[2:4]))
    M, S, C, n = 1001, 48, 35, 13  # not multiples of any block size
    kernels.composite_forward("cuda", "float32", M, S, C, *range(6), 0)
    kernels.composite_backward("cuda", "float32", M, S, C, *range(8), 0)
    kernels.importance("cuda", "float32", M, S, n, *range(4), 0)
    kernels.merge_sorted("cuda", "float32", M, S, n, *range(4), 0)
    kernels.composite_forward("cuda", "float32", 0, S, C, *range(6), 0)  # no rays: no launch
    # composite: one warp per ray, 4 warps a block; importance: one thread per fine
    # sample; merge: one thread per ray (kernels.cuh's constants).
    assert launches == [((251,), 128), ((251,), 128), ((-(-M * n // 256),), 256), ((8,), 128)]


def test_bias_act_launch_shapes_cover_every_element():
    """The forward's grid: x over a row's elements (256 a block), y over the rows, capped
    at CUDA's 65535 (the kernel loops over the rest); the backward: one thread an element."""
    launches = []
    kernels = _nvrtc.NvrtcKernels(launch=lambda *call: launches.append(call[2:4]))
    act = dict(alpha=0.2, gain=2 ** 0.5, clamp=0.0, linear=False, clamped=False)
    kernels.bias_act_forward("cuda", "float32", 3, 37, 19 * 23, 1, 2, **act, y=3, stream=0)  # NCHW: rows of channels
    kernels.bias_act_forward("cuda", "float32", 3 * 19 * 23, 37, 1, 1, 2, **act, y=3, stream=0)  # channels-last rows
    kernels.bias_act_forward("cuda", "float32", 70000, 300, 1, 1, 0, **act, y=3, stream=0)  # more rows than gridDim.y
    kernels.bias_act_forward("cuda", "float32", 0, 37, 5, 1, 2, **act, y=3, stream=0)  # nothing: no launch
    kernels.bias_act_forward("cuda", "float32", 3, 37, 0, 1, 2, **act, y=3, stream=0)  # an empty map: no launch
    kernels.bias_act_backward("cuda", "float32", 3 * 37 * 437, 1, 2, **act, grad_x=3, stream=0)
    assert launches == [((2, 111), 256), ((1, 1311), 256), ((2, 65535), 256), ((-(-3 * 37 * 437 // 256),), 256)]


def test_bias_act_scalars_are_the_kernels_type_and_flags():
    launches = []
    kernels = _nvrtc.NvrtcKernels(launch=lambda *call: launches.append(call))
    for dtype, linear, clamped in [("float32", True, False), ("float64", False, True)]:
        kernels.bias_act_backward("cuda", dtype, 10, 1, 2, alpha=0.2, gain=1.5, clamp=0.7, linear=linear,
                                  clamped=clamped, grad_x=3, stream=0)
    flags = [dict((n, v) for n, _, v in call[4])["flags"] for call in launches]
    assert flags == [1, 2]  # kBiasActLinear, kBiasActClamped
    args = _nvrtc._args(launches[0][4], "float32")
    assert [type(a).__name__ for a in args] == ["int64", "uint64", "uint64", "float32", "float32", "float32", "int32",
                                                 "uint64"]
    assert _nvrtc._args(launches[1][4], "float64")[3].dtype.name == "float64"
    with pytest.raises(ValueError, match="bias_act needs gain > 0, alpha >= 0 and clamp > 0"):
        kernels.bias_act_backward("cuda", "float32", 10, 1, 2, alpha=0.2, gain=0.0, clamp=0.0, linear=False,
                                  clamped=False, grad_x=3, stream=0)


def test_only_cuda_and_the_two_float_types():
    kernels = _nvrtc.NvrtcKernels(launch=lambda *call: None)
    with pytest.raises(ValueError, match="run on CUDA tensors, not cpu"):
        kernels.merge_sorted("cpu", "float32", 1, 2, 1, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got float16"):
        kernels.merge_sorted("cuda", "float16", 1, 2, 1, 0, 0, 0, 0, 0)


def test_merge_launch_refuses_more_fine_samples_than_its_local_array():
    launches = []
    kernels = _nvrtc.NvrtcKernels(launch=lambda *call: launches.append(call))
    limit = _nvrtc.launch_constants()["kMergeMaxFine"]
    kernels.merge_sorted("cuda", "float32", 3, 8, limit, *range(4), 0)
    with pytest.raises(ValueError, match=f"at most {limit} fine samples per ray, got n={limit + 1}"):
        kernels.merge_sorted("cuda", "float32", 3, 8, limit + 1, *range(4), 0)
    assert len(launches) == 1


def test_cuda_path_uses_nvrtc_when_the_prebuilt_kernels_cannot_run(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(_backend, "prebuilt_cuda_unavailable", lambda: "built without CUDA")
    monkeypatch.setattr(_nvrtc, "unavailable", lambda: None)
    assert _backend.cuda_unavailable(cuda) is None
    assert _backend.kernels_for(cuda) is _nvrtc.kernels()
    monkeypatch.setattr(_nvrtc, "unavailable", lambda: "cupy is not installed")
    assert _backend.cuda_unavailable(cuda) == ("built without CUDA; and the NVRTC path cannot run either: "
                                               "cupy is not installed")
    assert _backend.cuda_unavailable(torch.device("cpu")) == "the CUDA path runs on CUDA tensors"


def test_prebuilt_kernels_come_first(native_ext, monkeypatch):
    monkeypatch.setattr(_backend, "prebuilt_cuda_unavailable", lambda: None)
    monkeypatch.setattr(_nvrtc, "unavailable", lambda: None)
    assert _backend.kernels_for(torch.device("cuda")) is native_ext
    assert _backend.kernels_for(torch.device("cpu")) is native_ext


@pytest.fixture(params=["prebuilt", "nvrtc"])
def cuda_kernels(request, monkeypatch):
    """Run the CUDA path on the prebuilt kernels, or force the NVRTC-compiled ones."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if request.param == "nvrtc":
        if _nvrtc.unavailable() is not None:
            pytest.skip(_nvrtc.unavailable())
        monkeypatch.setattr(_backend, "prebuilt_cuda_unavailable", lambda: "forced off by the test")
    elif _backend.prebuilt_cuda_unavailable() is not None:
        pytest.skip(_backend.prebuilt_cuda_unavailable())
    return request.param


@pytest.mark.parametrize("S, C", [(48, 32), (97, 35)])
def test_cuda_composite_matches_reference(cuda_kernels, S, C):
    g = torch.Generator().manual_seed(S + C)
    sigma = torch.randn(2, 37, S, 1, generator=g, dtype=torch.float64) * 4
    rgb = torch.rand(2, 37, S, C, generator=g, dtype=torch.float64)
    depths = torch.sort(2 + 1.5 * torch.rand(2, 37, S, 1, generator=g, dtype=torch.float64), dim=2).values
    cot = [torch.randn(shape, generator=g, dtype=torch.float64) for shape in ((2, 37, C), (2, 37, 1), (2, 37, S - 1, 1))]

    def run(impl, dtype, device):
        s = sigma.to(device, dtype).requires_grad_()
        c = rgb.to(device, dtype).requires_grad_()
        outs = composite(s, c, depths.to(device, dtype), impl=impl)
        grads = torch.autograd.grad(outs, [s, c], [t.to(device, dtype) for t in cot])
        return [t.cpu() for t in (*outs, *grads)]

    ref64 = run("ref", torch.float64, "cpu")
    ref32 = run("ref", torch.float32, "cpu")
    got = run("cuda", torch.float32, "cuda")
    for name, a, r, r64 in zip(["rgb", "depth", "weights", "grad sigma", "grad rgb"], got, ref32, ref64):
        assert_fused_close(a, r, r64, FLOORS["fp32"], name)


def test_cuda_sampling_and_merge_match_reference(cuda_kernels):
    g = torch.Generator().manual_seed(3)
    depths = torch.sort(2 + torch.rand(3, 41, 48, 1, generator=g, dtype=torch.float64), dim=2).values
    weights = torch.rand(3, 41, 47, 1, generator=g, dtype=torch.float64)
    ref = importance_depths(depths, weights, 29, deterministic=True, impl="ref")
    got = importance_depths(depths.cuda(), weights.cuda(), 29, deterministic=True, impl="cuda").cpu()
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    fine = 2 + torch.rand(3, 41, 29, 1, generator=g, dtype=torch.float64)  # unsorted, as drawn
    sigma_a, sigma_b = torch.randn(3, 41, 48, 1, generator=g), torch.randn(3, 41, 29, 1, generator=g)
    rgb_a, rgb_b = torch.rand(3, 41, 48, 5, generator=g), torch.rand(3, 41, 29, 5, generator=g)
    inputs = (depths, sigma_a, rgb_a, fine, sigma_b, rgb_b)
    merged_ref = merge_samples(*inputs, impl="ref")
    merged = merge_samples(*(t.cuda() for t in inputs), impl="cuda")
    for a, r in zip(merged, merged_ref):
        torch.testing.assert_close(a.cpu(), r, rtol=0, atol=0)


# (shape, layout): NCHW and channels-last maps not multiples of the 256-thread block, [N, C]
# rows, more rows than CUDA's gridDim.y (65535), so that the kernel's row loop wraps and
# tracks each row's channel (130 x 512 NCHW rows, 2 x 200 x 180 channels-last rows), and
# an empty map.
CUDA_BIAS_ACT_CASES = [((3, 37, 19, 23), "contiguous"), ((3, 37, 19, 23), "channels_last"), ((5, 37), "contiguous"),
                       ((130, 512, 3, 3), "contiguous"), ((2, 7, 200, 180), "channels_last"),
                       ((2, 5, 0, 3), "contiguous")]


@pytest.mark.parametrize("shape,layout", CUDA_BIAS_ACT_CASES)
@pytest.mark.parametrize("clamp", [None, 0.8])
def test_cuda_bias_act_is_the_reference_bits(cuda_kernels, shape, layout, clamp):
    """The CUDA kernels run bias_act.h's core, which rounds as the reference does: output
    and x's gradient equal to the bit (CPU reference, fp32); the bias gradient (torch's
    sums, in another order) by the tolerance rule against the fp64 reference."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(shape, generator=g)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    b, cot = torch.randn(shape[1], generator=g), torch.randn(shape, generator=g, dtype=torch.float64)

    def run(impl, device, dtype=torch.float32):
        xx, bb = x.to(device, dtype).requires_grad_(), b.to(device, dtype).requires_grad_()
        out = bias_lrelu(xx, bb, clamp=clamp, impl=impl)
        return [t.cpu() for t in (out, *torch.autograd.grad(out, [xx, bb], cot.to(device, dtype)))]

    ref64, ref, got = run("ref", "cpu", torch.float64), run("ref", "cpu"), run("cuda", "cuda")
    assert torch.equal(got[0], ref[0]), "output"
    assert torch.equal(got[1], ref[1]), "x gradient"
    assert_fused_close(got[2], ref[2], ref64[2], FLOORS["fp32"], "bias gradient")


@pytest.mark.parametrize("up", [1, 2])
def test_cuda_modulated_conv2d_is_the_reference_with_the_cuda_epilogue(cuda_kernels, up):
    """``modulated_conv2d``'s CUDA path (auto on CUDA): torch's convolutions, then the CUDA
    bias_act. The output is the reference's on the same device to the bit; the gradients
    by the tolerance rule against the fp64 reference (the bias gradient is summed in
    another order, and everything upstream of it follows)."""
    ref64 = synthesis_layer_case(modulated_conv2d_ref, up, torch.float64)
    ref32 = synthesis_layer_case(modulated_conv2d_ref, up, torch.float32, "cuda")
    got = synthesis_layer_case(modulated_conv2d, up, torch.float32, "cuda", impl="cuda")
    assert torch.equal(got[0], ref32[0])
    for name, a, r, r64 in zip(SYNTHESIS_LAYER_RESULTS, got, ref32, ref64):
        assert_fused_close(a, r, r64, FLOORS["fp32"], name)


def test_cupy_is_optional_for_import():
    """Importing tri3d (and its NVRTC module) imports neither cupy nor NVRTC."""
    code = "import sys, tri3d, tri3d._nvrtc, tri3d.ops; assert 'cupy' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
