"""composite_ref against closed forms and an explicit per-ray loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tri3d.ops import composite, composite_ref


def softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def loop_composite(sigma_raw, rgb, depths):
    """Front-to-back compositing written as a scalar loop (float64)."""
    s, c, d = (t.double().numpy() for t in (sigma_raw, rgb, depths))
    B, R, S, C = c.shape
    out_rgb, out_depth, out_w = np.zeros((B, R, C)), np.zeros((B, R, 1)), np.zeros((B, R, S - 1, 1))
    for b in range(B):
        for r in range(R):
            trans, wsum, dsum = 1.0, 0.0, 0.0
            for i in range(S - 1):
                delta = d[b, r, i + 1, 0] - d[b, r, i, 0]
                sig = softplus((s[b, r, i, 0] + s[b, r, i + 1, 0]) / 2 - 1)
                alpha = 1 - math.exp(-sig * delta)
                w = alpha * trans
                out_w[b, r, i, 0] = w
                out_rgb[b, r] += w * (c[b, r, i] + c[b, r, i + 1]) / 2
                dsum += w * (d[b, r, i, 0] + d[b, r, i + 1, 0]) / 2
                wsum += w
                trans *= 1 - alpha + 1e-10
            depth = dsum / wsum if wsum > 0 else math.inf
            out_depth[b, r, 0] = min(max(depth, d[b, r, 0, 0]), d[b, r, -1, 0])
    return out_rgb, out_depth, out_w


def random_rays(B, R, S, C, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    sigma = torch.randn(B, R, S, 1, generator=g, dtype=dtype) * 3
    rgb = torch.rand(B, R, S, C, generator=g, dtype=dtype)
    depths = torch.sort(2 + torch.rand(B, R, S, 1, generator=g, dtype=dtype), dim=2).values
    return sigma, rgb, depths


@pytest.mark.parametrize("S, C", [(2, 1), (3, 3), (17, 5)])
def test_matches_scalar_loop(S, C):
    sigma, rgb, depths = random_rays(2, 5, S, C, seed=S)
    got = composite_ref(sigma, rgb, depths)
    want = loop_composite(sigma, rgb, depths)
    for g_, w_ in zip(got, want):
        np.testing.assert_allclose(g_.double().numpy(), w_, rtol=2e-5, atol=2e-6)


def test_constant_slab_opacity_closed_form():
    depths = torch.linspace(2.0, 3.5, 64, dtype=torch.float64).reshape(1, 1, 64, 1).repeat(1, 4, 1, 1)
    raw = torch.tensor([-2.0, 0.0, 1.0, 2.5], dtype=torch.float64).reshape(1, 4, 1, 1).expand(1, 4, 64, 1)
    _, _, w = composite_ref(raw, torch.rand(1, 4, 64, 3, dtype=torch.float64), depths)
    sig = torch.nn.functional.softplus(raw[0, :, 0, 0] - 1)
    expected = 1 - torch.exp(-sig * 1.5)
    torch.testing.assert_close(w.sum(dim=(2, 3))[0], expected, rtol=1e-8, atol=1e-8)


def test_weights_sum_at_most_one():
    sigma, rgb, depths = random_rays(3, 50, 40, 2, seed=7)
    _, _, w = composite_ref(sigma * 10, rgb, depths)
    assert (w >= 0).all() and (w.sum(dim=2) <= 1 + 1e-6).all()


def test_thin_opaque_shell_depth():
    S, k = 48, 20
    depths = torch.linspace(2.0, 3.4, S, dtype=torch.float64).reshape(1, 1, S, 1)
    raw = torch.full((1, 1, S, 1), -3e3, dtype=torch.float64)  # neighbours average to < 0
    raw[:, :, k : k + 2] = 2e3  # opaque interval between samples k and k+1
    _, depth, w = composite_ref(raw, torch.rand(1, 1, S, 3, dtype=torch.float64), depths)
    shell = (depths[0, 0, k, 0] + depths[0, 0, k + 1, 0]) / 2
    assert abs(depth.item() - shell.item()) < 1e-9
    assert abs(w.sum().item() - 1) < 1e-8  # the 1e-10 transmittance term leaks ~S * 1e-10


def test_empty_ray_depth_clamps_to_last_sample():
    depths = torch.linspace(2.0, 3.0, 8).reshape(1, 1, 8, 1)
    raw = torch.full((1, 1, 8, 1), -1e4)  # softplus underflows to exactly 0
    rgb, depth, w = composite_ref(raw, torch.rand(1, 1, 8, 3), depths)
    assert w.sum() == 0 and rgb.abs().sum() == 0
    assert depth.item() == pytest.approx(3.0)


def test_gradcheck_float64():
    sigma, rgb, depths = random_rays(1, 3, 6, 2, seed=11, dtype=torch.float64)
    sigma.requires_grad_()
    rgb.requires_grad_()
    assert torch.autograd.gradcheck(lambda s, c: composite_ref(s, c, depths), (sigma, rgb))


def test_bad_input_names_the_argument():
    sigma, rgb, depths = random_rays(1, 2, 5, 3, seed=0)
    with pytest.raises(ValueError, match="depths must be sorted"):
        composite(sigma, rgb, depths.flip(2))
    with pytest.raises(ValueError, match="sigma_raw must have shape"):
        composite(sigma[..., 0], rgb, depths)
    with pytest.raises(ValueError, match="sizes of sigma_raw, rgb, depths must agree"):
        composite(sigma, rgb[:, :, :4], depths)
    with pytest.raises(ValueError, match="at least 2 samples"):
        composite(sigma[:, :, :1], rgb[:, :, :1], depths[:, :, :1])
    bad = depths.clone()
    bad[0, 0, 2, 0] = float("inf")
    with pytest.raises(ValueError, match="depths must be finite"):
        composite(sigma, rgb, bad)
