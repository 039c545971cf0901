"""Native compositor (C++ build of the shared HOST_DEVICE core) vs the fp64 reference."""
from __future__ import annotations

import importlib

import pytest
import torch

from tri3d.ops import composite
from tri3d.testing import FLOORS, assert_fused_close


def rays(B, R, S, C, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    sigma = torch.randn(B, R, S, 1, generator=g, dtype=dtype) * 4
    sigma[0, 0] = -1e4  # all-zero density: no weight, depth clamps to the last sample
    sigma[0, 1] = 5e3  # opaque from the first interval on
    if R > 2:
        sigma[0, 2, S // 2 :] = 2e3  # opaque half-way
    rgb = torch.rand(B, R, S, C, generator=g, dtype=dtype)
    depths = torch.sort(2 + 1.5 * torch.rand(B, R, S, 1, generator=g, dtype=dtype), dim=2).values
    return sigma, rgb, depths


def outputs_and_grads(impl, sigma, rgb, depths, cot):
    s, c = sigma.detach().requires_grad_(), rgb.detach().requires_grad_()
    outs = composite(s, c, depths, impl=impl)
    grads = torch.autograd.grad(outs, [s, c], [t.to(o.dtype) for t, o in zip(cot, outs)])
    return [*outs, *grads]


@pytest.mark.parametrize("S", [2, 3, 48, 96, 97])
@pytest.mark.parametrize("C", [1, 3, 32, 35])
def test_matches_fp64_reference(native_ext, S, C):
    sigma, rgb, depths = rays(2, 9, S, C, seed=S * 100 + C)
    g = torch.Generator().manual_seed(7)
    cot = [torch.randn(2, 9, C, generator=g), torch.randn(2, 9, 1, generator=g), torch.randn(2, 9, S - 1, 1, generator=g)]
    ref64 = outputs_and_grads("ref", sigma.double(), rgb.double(), depths.double(), [t.double() for t in cot])
    ref32 = outputs_and_grads("ref", sigma, rgb, depths, cot)
    cpp = outputs_and_grads("cpp", sigma, rgb, depths, cot)
    for name, a, r, r64 in zip(["rgb", "depth", "weights", "grad sigma", "grad rgb"], cpp, ref32, ref64):
        assert a.dtype == torch.float32
        assert_fused_close(a, r, r64, FLOORS["fp32"], name)


def test_wide_intervals_see_every_density_regime(native_ext):
    """Intervals of depth 1-2 make alpha sensitive to the softplus itself (the CPU path's
    own exp / log1p), over raw densities from the log1p tail through the threshold at 20."""
    M, S, C = 2001, 3, 2
    sigma = torch.linspace(-30, 30, M * S).reshape(1, M, S, 1)
    rgb = torch.rand(1, M, S, C, generator=torch.Generator().manual_seed(1))
    depths = torch.tensor([2.0, 3.0, 5.0]).expand(1, M, S).unsqueeze(-1).contiguous()
    g = torch.Generator().manual_seed(2)
    cot = [torch.randn(1, M, C, generator=g), torch.randn(1, M, 1, generator=g), torch.randn(1, M, S - 1, 1, generator=g)]
    ref64 = outputs_and_grads("ref", sigma.double(), rgb.double(), depths.double(), [t.double() for t in cot])
    ref32 = outputs_and_grads("ref", sigma, rgb, depths, cot)
    cpp = outputs_and_grads("cpp", sigma, rgb, depths, cot)
    for name, a, r, r64 in zip(["rgb", "depth", "weights", "grad sigma", "grad rgb"], cpp, ref32, ref64):
        assert_fused_close(a, r, r64, FLOORS["fp32"], name)


def test_fp64_gradcheck(native_ext):
    sigma, rgb, depths = rays(1, 4, 7, 3, seed=3, dtype=torch.float64)
    sigma = sigma.clamp(-5, 5).requires_grad_()  # keep the finite-difference steps meaningful
    rgb.requires_grad_()
    assert torch.autograd.gradcheck(lambda s, c: composite(s, c, depths, impl="cpp"), (sigma, rgb))


def test_only_some_outputs_used(native_ext):
    sigma, rgb, depths = rays(1, 5, 12, 4, seed=4, dtype=torch.float64)
    for pick in range(3):
        grads = []
        for impl in ("ref", "cpp"):
            s = sigma.clone().requires_grad_()
            out = composite(s, rgb, depths, impl=impl)[pick]
            grads.append(torch.autograd.grad(out.square().sum(), s)[0])
        torch.testing.assert_close(grads[1], grads[0])


def test_bad_input(native_ext):
    sigma, rgb, depths = rays(1, 3, 6, 3, seed=5)
    with pytest.raises(ValueError, match="depths must be sorted"):
        composite(sigma, rgb, depths.flip(2), impl="cpp")
    with pytest.raises(ValueError, match="depths requires grad"):
        composite(sigma, rgb, depths.clone().requires_grad_(), impl="cpp")
    with pytest.raises(RuntimeError, match="impl='cuda' is unavailable on cpu"):
        composite(sigma, rgb, depths, impl="cuda")


def test_auto_prefers_native_on_cpu(native_ext, monkeypatch):
    composite_module = importlib.import_module("tri3d.ops.composite")  # the module, not the function

    calls = []
    monkeypatch.setattr(composite_module, "composite_native",
                        lambda *a: calls.append(1) or composite_module.composite_ref(*a))
    sigma, rgb, depths = rays(1, 3, 6, 3, seed=6)
    composite(sigma, rgb, depths)
    assert calls == [1]
    monkeypatch.setenv("TRI3D_IMPL", "ref")
    composite(sigma, rgb, depths)
    assert calls == [1]


def test_missing_extension_falls_back_cleanly(monkeypatch):
    from tri3d import _backend

    monkeypatch.setattr(_backend, "_load", lambda: (None, "the native extension tri3d._C is not available (test)"))
    sigma, rgb, depths = rays(1, 3, 6, 3, seed=8)
    ref = composite(sigma, rgb, depths, impl="ref")
    for a, b in zip(composite(sigma, rgb, depths), ref):  # auto -> ref
        torch.testing.assert_close(a, b)
    with pytest.raises(RuntimeError, match="tri3d._C is not available"):
        composite(sigma, rgb, depths, impl="cpp")
