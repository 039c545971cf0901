"""Ray distortion (Mip-NeRF 360) against its double sum, closed forms and the renderer."""
from __future__ import annotations

import pytest
import torch

from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, look_at
from tri3d.render.distortion import ray_distortion

NEAR, FAR = 2.0, 3.4


def double_sum(weights, depths, near, far):  # the definition, pair by pair, in fp64
    w, d = weights[..., 0].double(), depths[..., 0].double() / (far - near)
    mid, width = (d[..., 1:] + d[..., :-1]) / 2, d[..., 1:] - d[..., :-1]
    pairs = (w[..., :, None] * w[..., None, :] * (mid[..., :, None] - mid[..., None, :]).abs()).sum(dim=(-1, -2))
    return (pairs + (w.square() * width).sum(dim=-1) / 3)[..., None]


def random_rays(B, R, S, seed):
    g = torch.Generator().manual_seed(seed)
    depths = torch.sort(NEAR + (FAR - NEAR) * torch.rand(B, R, S, 1, generator=g), dim=2).values
    weights = torch.rand(B, R, S - 1, 1, generator=g)
    return weights / weights.sum(dim=2, keepdim=True) * torch.rand(B, R, 1, 1, generator=g), depths


@pytest.mark.parametrize("S", [2, 3, 24, 97])
def test_equals_the_double_sum_with_its_gradient(S):
    weights, depths = random_rays(2, 5, S, seed=S)
    g = torch.Generator().manual_seed(100 + S)
    cot = torch.randn(2, 5, 1, generator=g, dtype=torch.float64)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-6)):
        w = weights.to(dtype).requires_grad_()
        out = ray_distortion(w, depths.to(dtype), NEAR, FAR)
        (grad,) = torch.autograd.grad(out, w, cot.to(dtype))
        w64 = weights.double().requires_grad_()
        ref = double_sum(w64, depths.double(), NEAR, FAR)
        (ref_grad,) = torch.autograd.grad(ref, w64, cot)
        assert out.dtype == dtype
        torch.testing.assert_close(out.double(), ref, atol=tol, rtol=tol)
        torch.testing.assert_close(grad.double(), ref_grad, atol=tol, rtol=tol)


def test_closed_forms():
    depths = torch.tensor([2.0, 2.7, 2.8, 3.4]).reshape(1, 1, 4, 1)
    span = FAR - NEAR
    one = torch.tensor([0.0, 1.0, 0.0]).reshape(1, 1, 3, 1)  # all weight in the thin middle interval
    assert ray_distortion(one, depths, NEAR, FAR).item() == pytest.approx(0.1 / span / 3, rel=1e-6)
    halves = torch.tensor([0.5, 0.0, 0.5]).reshape(1, 1, 3, 1)  # split between the outer intervals
    gap = (3.1 - 2.35) / span
    within = 0.25 * (0.7 + 0.6) / span / 3
    assert ray_distortion(halves, depths, NEAR, FAR).item() == pytest.approx(2 * 0.25 * gap + within, rel=1e-6)
    assert ray_distortion(torch.zeros(1, 1, 3, 1), depths, NEAR, FAR).item() == 0


def field_of(sigma_inside: float, radius: float):
    def field(xyz):
        inside = xyz.norm(dim=-1, keepdim=True) < radius
        sigma = torch.where(inside, torch.full_like(inside, sigma_inside, dtype=xyz.dtype),
                            torch.full_like(inside, -1e4, dtype=xyz.dtype))
        return sigma, torch.ones(*xyz.shape[:-1], 3, dtype=xyz.dtype)

    return field


def test_renderer_reports_its_own_composite_and_tells_surfaces_from_fog(monkeypatch):
    import tri3d.render.renderer as renderer_module

    renderer = TriplaneRenderer(near=NEAR, far=FAR, depth_samples=24, importance_samples=24, deterministic=True)
    cams = look_at(torch.tensor([[[0.0, 0.0, 2.7]]]))
    K = fov_to_intrinsics(30.0)
    seen = []
    composite = renderer_module.composite

    def recording(sigma, rgb, depths):  # keep the final composite's weights and depths
        out = composite(sigma, rgb, depths)
        if rgb.shape[-1] > 0:
            seen.append((out[2], depths))
        return out

    monkeypatch.setattr(renderer_module, "composite", recording)
    solid = renderer.render_field(field_of(1e4, 0.35), cams, K, 8, batch=1, with_distortion=True)
    (weights, depths), = seen
    expected = double_sum(weights, depths, NEAR, FAR).float().reshape(1, 1, 8, 8, 1).permute(0, 1, 4, 2, 3)
    torch.testing.assert_close(solid["distortion"], expected, atol=1e-6, rtol=1e-5)
    fog = renderer.render_field(field_of(3.0, 0.35), cams, K, 8, batch=1, with_distortion=True)
    hit = (solid["opacity"] > 0.99) & (fog["opacity"] > 0.5)  # rays through the ball's middle
    assert hit.sum() >= 4
    # A hard surface puts the weight in the interval where the ray enters; fog spreads it
    # over the ball's depth (0.7 of the 1.4 range): tens of times more distortion.
    assert (solid["distortion"][hit] < 0.01).all()
    assert (fog["distortion"][hit] > 10 * solid["distortion"][hit]).all()
    assert "distortion" not in renderer.render_field(field_of(1e4, 0.35), cams, K, 8, batch=1)


def test_bad_arguments():
    weights, depths = random_rays(1, 2, 5, seed=0)
    with pytest.raises(ValueError, match="one more sample"):
        ray_distortion(weights, depths[:, :, :4], NEAR, FAR)
    with pytest.raises(ValueError, match="weights"):
        ray_distortion(weights[..., 0], depths, NEAR, FAR)
    with pytest.raises(ValueError, match="near and far"):
        ray_distortion(weights, depths, 3.0, 2.0)
