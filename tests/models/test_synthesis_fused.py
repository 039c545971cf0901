"""The synthesis network runs its up=1 modulated convolutions through the fused kernel
whenever ``impl="auto"`` picks Triton (on CUDA; the test lets the interpreter stand in)."""
from __future__ import annotations

import copy

import pytest
import torch

import tri3d.ops.modconv as modconv
from tri3d.models.layers import SynthesisLayer, ToRGBLayer
from tri3d.models.synthesis import SynthesisNetwork
from tri3d.testing import FLOORS, assert_fused_close

pytest.importorskip("triton")


def outputs_and_grads(net, ws, cotangent):
    img = net(ws, noise_mode="const")
    grads = torch.autograd.grad((img * cotangent.to(img.dtype)).sum(), list(net.parameters()))
    return [img, *grads]


def noise_strength_conditions(net, ws, cotangent, monkeypatch) -> dict[str, float]:
    """The condition number ``sum |terms| / |sum|`` of each noise strength's gradient, a sum
    over every pixel and channel of ``dL/dz * noise`` (fp64): rounding in the terms reaches
    the sum amplified by it, so the fp32 floor of that gradient scales with it."""
    names = {id(p): n for n, p in net.named_parameters()}
    terms = {}
    ref_fn = modconv.modulated_conv2d_ref

    def per_pixel(*args, noise=None, noise_strength=None, **kwargs):
        if noise is not None:  # noise * (1 + t) with t = 0: dL/dt_p is pixel p's term of dL/dns, times ns
            t = torch.zeros_like(noise, requires_grad=True)
            terms[names[id(noise_strength)]] = t
            noise = noise * (1 + t)
        return ref_fn(*args, noise=noise, noise_strength=noise_strength, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(modconv, "modulated_conv2d_ref", per_pixel)
        m.setenv("TRI3D_IMPL", "ref")
        img = net(ws, noise_mode="const")
    grads = torch.autograd.grad((img * cotangent).sum(), list(terms.values()))
    return {name: (g.abs().sum() / g.sum().abs()).item() for name, g in zip(terms, grads)}


def test_every_up1_layer_runs_fused_through_the_network(device, monkeypatch):
    torch.manual_seed(0)
    net = SynthesisNetwork(w_dim=16, img_resolution=16, img_channels=24, channel_base=256, channel_max=32,
                           extra_blocks=True)
    with torch.no_grad():
        for p in net.parameters():  # non-zero biases and noise strengths so every term counts
            if p.dim() <= 1:
                p.normal_(0.0, 0.3)
    ws = torch.randn(3, net.num_ws, 16)
    cot = torch.randn(3, 24, 16, 16)
    ref64 = outputs_and_grads(copy.deepcopy(net).double(), ws.double(), cot.double())
    conditions = noise_strength_conditions(copy.deepcopy(net).double(), ws.double(), cot.double(), monkeypatch)
    assert set(conditions) == {n for n, _ in net.named_parameters() if n.endswith("noise_strength")}
    # Exact fp32 dots on CUDA too, so the fp32 tolerance applies (cuDNN's convolutions in
    # both paths, Triton's in the fused one).
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    # The same-precision reference runs where the fused path runs: on CUDA both share the
    # up-sampling layers' cuDNN convolutions and the device's reduction order (the noise
    # strengths' gradients are sums over every pixel).
    monkeypatch.setenv("TRI3D_IMPL", "ref")
    ref = outputs_and_grads(copy.deepcopy(net).to(device), ws.to(device), cot.to(device))
    monkeypatch.delenv("TRI3D_IMPL")

    calls = []
    fused_fn = modconv.modulated_conv2d_fused
    monkeypatch.setattr(modconv, "modulated_conv2d_fused", lambda *a, **k: calls.append(1) or fused_fn(*a, **k))
    # auto leaves modulated convolutions to cuDNN (and never picks the interpreter), so the
    # layers' auto takes the explicit probe.
    probe = modconv._triton_reason
    monkeypatch.setattr(modconv, "_triton_reason", lambda *args, explicit: probe(*args, explicit=True))
    net_d = copy.deepcopy(net).to(device)
    fused = outputs_and_grads(net_d, ws.to(device), cot.to(device))

    up1 = [m for m in net.modules() if isinstance(m, ToRGBLayer) or (isinstance(m, SynthesisLayer) and m.up == 1)]
    assert len(calls) == len(up1) == 15  # of 17: the 2 up-sampling convs stay on the reference path
    names = ["img"] + [n for n, _ in net.named_parameters()]
    for name, f, r, r64 in zip(names, fused, ref, ref64):
        assert_fused_close(f.cpu(), r.cpu(), r64, FLOORS["fp32"] * conditions.get(name, 1.0), name)
