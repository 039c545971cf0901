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
from tri3d.ops import composite, importance_depths, merge_samples
from tri3d.testing import FLOORS, assert_fused_close


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
}


@pytest.mark.parametrize("entry", sorted(CALLS))
def test_launch_passes_the_kernel_parameters_in_order(entry):
    launches = []
    kernels = _nvrtc.NvrtcKernels(launch=lambda *call: launches.append(call))
    method = getattr(kernels, entry)
    params = [p for p in inspect.signature(method).parameters if p not in ("device", "dtype", "stream")]
    values = {p: 1000 + 7 * i for i, p in enumerate(params)}  # distinct values: a swap shows
    if entry == "merge_sorted":
        values["n"] = 77  # within kMergeMaxFine, still distinct
    method("cuda", "float64", **values, stream=55)
    (kernel, dtype, grid, block, named, stream), = launches
    assert (kernel, dtype, stream) == (CALLS[entry], "float64", 55)
    declared = _kernel_parameters()[kernel]
    assert [n for n, _, _ in named] == declared
    assert [v for _, _, v in named] == [values[n] for n in declared]
    assert all(kind == ("i64" if n in ("M", "S", "C", "n") else "ptr") for n, kind, _ in named)


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
    assert launches == [(251, 128), (251, 128), (-(-M * n // 256), 256), (8, 128)]


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


def test_cupy_is_optional_for_import():
    """Importing tri3d (and its NVRTC module) imports neither cupy nor NVRTC."""
    code = "import sys, tri3d, tri3d._nvrtc, tri3d.ops; assert 'cupy' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
