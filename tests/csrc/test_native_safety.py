"""The native ops cannot crash the process: every former segfault is a Python exception
(run in a subprocess, whose exit status must not be a signal), indices are 64-bit, the
Python layer checks every raw pointer, and ``cpp`` behaves like ``ref`` on empty
tensors, fp16 inputs and bad values."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from tri3d.ops import composite
from tri3d.ops.composite import composite_native_backward, composite_native_forward
from tri3d.ops import importance_depths, merge_samples


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def assert_exception_not_signal(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 1, f"exit status {proc.returncode} (negative: killed by a signal)\n{proc.stderr[-2000:]}"
    assert "ValueError" in proc.stderr and message in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("call, message", [
    ("composite(s, c, d.to('meta'), impl='cpp')", "sigma_raw, rgb, depths must be on one device"),
    ("composite(s.to('meta'), c, d, impl='cpp')", "sigma_raw, rgb, depths must be on one device"),
    ("importance_depths(d, w.to('meta'), 4, impl='cpp')", "depths, weights must be on one device"),
    ("merge_samples(d, s, c, d.to('meta'), s, c, impl='cpp')", "must be on one device"),
])
def test_tensors_on_different_devices_raise_instead_of_segfaulting(native_ext, call, message):
    proc = run_python(f"""
        import torch
        from tri3d.ops import composite
        from tri3d.ops import importance_depths, merge_samples
        s, c = torch.randn(1, 3, 6, 1), torch.rand(1, 3, 6, 4)
        d = torch.linspace(2, 3, 6).expand(1, 3, 6).unsqueeze(-1).contiguous()
        w = torch.rand(1, 3, 5, 1)
        {call}
    """)
    assert_exception_not_signal(proc, message)


def test_a_ray_with_more_than_2_31_values_composites_correctly(native_ext):
    """S * C = 2^31 + 2 values in one ray: 32-bit ``i * C + c`` would wrap negative. The
    untouched pages of ``torch.empty`` are never written, so the input costs no memory."""
    proc = run_python("""
        import math, torch
        from tri3d.ops.composite import composite_native_forward
        C = 2**30 + 1
        rgb = torch.empty(1, 2, C)
        rgb[0, 0, C - 1], rgb[0, 1, C - 1] = 0.25, 0.75  # the last channel, past index 2^31 in sample 1
        sigma = torch.tensor([[3.0, 5.0]])
        depths = torch.tensor([[2.0, 2.5]])
        out_rgb, out_depth, out_w = composite_native_forward(sigma, rgb, depths)
        w = 1 - math.exp(-math.log1p(math.exp(3.0)) * 0.5)
        assert abs(out_w[0, 0].item() - w) < 1e-6, out_w
        assert abs(out_rgb[0, C - 1].item() - w * 0.5) < 1e-6, out_rgb[0, C - 1]
        assert abs(out_depth[0].item() - 2.25) < 1e-6, out_depth
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def _flat(M=3, S=5, C=4, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    sigma = torch.randn(M, S, generator=g, dtype=dtype)
    rgb = torch.rand(M, S, C, generator=g, dtype=dtype)
    depths = torch.sort(2 + torch.rand(M, S, generator=g, dtype=dtype), dim=1).values
    return sigma, rgb, depths


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update(rgb=a["rgb"].transpose(0, 1).contiguous().transpose(0, 1)), "rgb must be contiguous"),
    (lambda a: a.update(sigma=a["sigma"].half()), "sigma must be torch.float32"),
    (lambda a: a.update(depths=a["depths"][:, :4].contiguous()), "depths must have shape [3, 5]"),
    (lambda a: a.update(sigma=a["sigma"][:2].contiguous()), "sigma must have shape [3, 5]"),
])
def test_raw_forward_checks_every_pointer(native_ext, edit, message):
    sigma, rgb, depths = _flat()
    args = dict(sigma=sigma, rgb=rgb, depths=depths)
    edit(args)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        composite_native_forward(args["sigma"], args["rgb"], args["depths"])


def test_raw_backward_refuses_a_missing_grad_depth_and_wrong_sizes(native_ext):
    sigma, rgb, depths = _flat()
    with pytest.raises(ValueError, match="grad_depth must be a tensor"):
        composite_native_backward(sigma, rgb, depths, torch.zeros(3, 4), None, None)
    with pytest.raises(ValueError, match=r"grad_weights must have shape \[3, 4\]"):
        composite_native_backward(sigma, rgb, depths, torch.zeros(3, 4), torch.zeros(3), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="the native kernels compute in float32 or float64"):
        composite_native_backward(sigma.half(), rgb.half(), depths.half(), torch.zeros(3, 4).half(),
                                  torch.zeros(3).half(), None)


@pytest.mark.parametrize("shape", [(0, 3, 5, 4), (2, 0, 5, 4), (2, 3, 5, 0)])
def test_empty_inputs_give_what_the_reference_gives(native_ext, shape):
    B, R, S, C = shape
    sigma = torch.randn(B, R, S, 1)
    rgb = torch.rand(B, R, S, C)
    depths = torch.sort(2 + torch.rand(B, R, S, 1), dim=2).values
    for ref, cpp in zip(composite(sigma, rgb, depths, impl="ref"), composite(sigma, rgb, depths, impl="cpp")):
        assert cpp.shape == ref.shape and cpp.dtype == ref.dtype
        torch.testing.assert_close(cpp, ref, rtol=1e-5, atol=1e-6)
    if C:
        weights = torch.rand(B, R, S - 1, 1)
        a = importance_depths(depths, weights, 3, impl="ref", deterministic=True)
        b = importance_depths(depths, weights, 3, impl="cpp", deterministic=True)
        assert a.shape == b.shape == (B, R, 3, 1)


def test_fp16_in_is_fp16_out_on_every_path(native_ext):
    sigma, rgb, depths = (t.half() for t in _flat())
    args = (sigma.reshape(1, 3, 5, 1), rgb.reshape(1, 3, 5, 4), depths.reshape(1, 3, 5, 1))
    ref, cpp = composite(*args, impl="ref"), composite(*args, impl="cpp")
    assert [t.dtype for t in cpp] == [t.dtype for t in ref] == [torch.float16] * 3


@pytest.mark.parametrize("impl", ["ref", "cpp"])
def test_importance_sampling_refuses_bad_values_on_every_path(native_ext, impl):
    depths = torch.linspace(2, 3, 6).expand(1, 2, 6).unsqueeze(-1).contiguous()
    weights = torch.rand(1, 2, 5, 1)
    with pytest.raises(ValueError, match="depths must be sorted"):
        importance_depths(depths.flip(2), weights, 4, impl=impl)
    bad = depths.clone()
    bad[0, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="depths must be finite"):
        importance_depths(bad, weights, 4, impl=impl)
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        importance_depths(depths, -weights, 4, impl=impl)


def test_merge_refuses_nan_depths(native_ext):
    d = torch.linspace(2, 3, 6).expand(1, 2, 6).unsqueeze(-1).contiguous()
    s, c = torch.randn(1, 2, 6, 1), torch.rand(1, 2, 6, 3)
    bad = d.clone()
    bad[0, 1, 2] = float("nan")
    for a, b in ((bad, d), (d, bad)):
        with pytest.raises(ValueError, match="must be finite"):
            merge_samples(a, s, c, b, s, c, impl="cpp")
