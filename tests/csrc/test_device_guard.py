"""Every Triton launch and every extension call runs under a device guard set to its
tensors' device (Triton launches on the current CUDA device; the extension's kernels run
in the thread's current context). Without a GPU: the guard is replaced by a recorder and
each launch function checks that it is called inside it, with the right device."""
from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from tri3d import _backend, _nvrtc
from tri3d.models import TriplaneDecoder
from tri3d.ops import bias_lrelu, composite, modulated_conv2d, triplane_decode
from tri3d.ops import importance_depths, merge_samples


@pytest.fixture
def guard(monkeypatch):
    """Replaces ``on_device`` with a recorder. ``wrap(module, name)`` makes a launch
    function record (name, device) in ``launched``, failing when called outside the guard."""
    state = {"device": None, "launched": []}

    @contextlib.contextmanager
    def recording_guard(device):
        outer, state["device"] = state["device"], device
        try:
            yield
        finally:
            state["device"] = outer

    def checked(name, fn):
        def call(*args, **kwargs):
            assert state["device"] is not None, f"{name} launched outside the device guard"
            state["launched"].append((name, state["device"]))
            return fn(*args, **kwargs)
        return call

    def wrap(module, name):
        monkeypatch.setattr(module, name, checked(name, getattr(module, name)))

    monkeypatch.setattr(_backend, "on_device", recording_guard)
    state["checked"], state["wrap"] = checked, wrap
    return state


def test_native_calls_run_under_the_tensors_device(guard, native_ext, monkeypatch):
    class CheckedNative:
        def __getattr__(self, name):
            return guard["checked"](name, getattr(native_ext, name))

    monkeypatch.setattr(_backend, "kernels_for", lambda device: CheckedNative())
    sigma, rgb = torch.randn(1, 3, 6, 1, requires_grad=True), torch.rand(1, 3, 6, 4, requires_grad=True)
    depths = torch.linspace(2, 3, 6).expand(1, 3, 6).unsqueeze(-1).contiguous()
    out = composite(sigma, rgb, depths, impl="cpp")
    sum(o.sum() for o in out).backward()
    fine = importance_depths(depths, out[2].detach(), 4, impl="cpp")
    merge_samples(depths, sigma.detach(), rgb.detach(), fine, sigma.detach()[:, :, :4], rgb.detach()[:, :, :4],
                  impl="cpp")
    bias_lrelu(torch.randn(2, 3, 4, requires_grad=True), torch.randn(3), impl="cpp").sum().backward()
    assert guard["launched"] == [(name, torch.device("cpu")) for name in
                                 ("composite_forward", "composite_backward", "importance", "merge_sorted",
                                  "bias_act_forward", "bias_act_backward")]


def test_triton_launches_run_under_the_tensors_device(guard, device):
    pytest.importorskip("triton")
    import tri3d.kernels.modconv as modconv_kernels
    import tri3d.kernels.triplane_mlp as triplane_kernels

    for module, name in ((triplane_kernels, "triplane_mlp_forward"), (triplane_kernels, "triplane_mlp_backward"),
                         (modconv_kernels, "modconv_forward"), (modconv_kernels, "modconv_backward")):
        guard["wrap"](module, name)
    g = torch.Generator().manual_seed(0)
    planes = torch.randn(1, 3, 8, 6, 6, generator=g).to(device).requires_grad_()
    xyz = (torch.rand(1, 20, 3, generator=g) * 2 - 1).to(device)
    decoder = TriplaneDecoder(in_features=8, hidden=16, n_hidden=1, out_features=3).to(device)
    sigma, rgb = triplane_decode(planes, xyz, decoder, impl="triton")
    (sigma.sum() + rgb.sum()).backward()
    x = torch.randn(1, 5, 4, 4, generator=g).to(device).requires_grad_()
    y = modulated_conv2d(x, torch.randn(6, 5, 3, 3, generator=g).to(device), torch.rand(1, 5, generator=g).to(device),
                         impl="triton")
    y.sum().backward()
    assert guard["launched"] == [(name, planes.device) for name in  # cuda:N, as the guard sees it
                                 ("triplane_mlp_forward", "triplane_mlp_backward", "modconv_forward",
                                  "modconv_backward")]


def test_the_guard_switches_the_current_cuda_device(monkeypatch):
    entered = []

    class RecordingDevice:
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            entered.append(self.device)

        def __exit__(self, *exc):
            entered.append("exit")

    monkeypatch.setattr(torch.cuda, "device", RecordingDevice)
    with _backend.on_device(torch.device("cuda", 1)):
        assert entered == [torch.device("cuda", 1)]
    with _backend.on_device(torch.device("cpu")):
        pass
    assert entered == [torch.device("cuda", 1), "exit"]


def test_a_driver_older_than_the_build_makes_auto_fall_back_with_one_warning(native_ext, monkeypatch):
    monkeypatch.setattr(native_ext, "with_cuda", True)  # the probe's answer must not depend on how CI built _C
    monkeypatch.setattr(_nvrtc, "unavailable", lambda: "cupy is not installed")  # nor on cupy being there
    monkeypatch.setattr(native_ext, "cuda_versions", lambda: (13000, 12040, 1), raising=False)
    _backend.cuda_runtime_problem.cache_clear()
    try:
        with pytest.warns(UserWarning, match=r"built with CUDA 13\.0 but this driver supports CUDA 12\.4 at most"):
            reason = _backend.cuda_unavailable(torch.device("cuda"))
        assert "update the driver, or rebuild tri3d" in reason
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # asked again: the same answer, no second warning
            assert _backend.cuda_unavailable(torch.device("cuda")) == reason
        from tri3d.ops._dispatch import always, resolve_impl

        paths = {"cuda": _backend.cuda_unavailable, "cpp": _backend.cpp_unavailable, "ref": always}
        assert resolve_impl("composite", "auto", torch.device("cuda"), paths) == "ref"
        with pytest.raises(RuntimeError, match="impl='cuda' is unavailable on cuda: tri3d._C was built with CUDA 13"):
            resolve_impl("composite", "cuda", torch.device("cuda"), paths)
        monkeypatch.setattr(native_ext, "cuda_versions", lambda: (12040, 12080, 2), raising=False)
        _backend.cuda_runtime_problem.cache_clear()
        assert _backend.cuda_unavailable(torch.device("cuda")) is None
    finally:
        _backend.cuda_runtime_problem.cache_clear()
