"""TriplaneRenderer on an analytic sphere and against its own invariants."""
from __future__ import annotations

import math

import pytest
import torch

from tri3d.models import TriplaneDecoder
from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, look_at, sample_multiview_poses

RADIUS_CAM, RADIUS_SPHERE, FOV, RES = 2.7, 0.35, 30.0, 32


def sphere_field(xyz):
    inside = xyz.norm(dim=-1, keepdim=True) < RADIUS_SPHERE
    sigma = torch.where(inside, torch.full_like(inside, 1e4, dtype=xyz.dtype), torch.full_like(inside, -1e4, dtype=xyz.dtype))
    return sigma, torch.ones(*xyz.shape[:-1], 3, dtype=xyz.dtype)


def test_sphere_silhouette_and_depth():
    renderer = TriplaneRenderer(near=2.0, far=3.4)
    cams = look_at(torch.tensor([[[0.3, 1.1, RADIUS_CAM]]]) / torch.tensor([0.3, 1.1, RADIUS_CAM]).norm() * RADIUS_CAM)
    K = fov_to_intrinsics(FOV)
    out = renderer.render_field(sphere_field, cams, K, RES, batch=1, generator=torch.Generator().manual_seed(0))
    opacity, depth = out["opacity"][0, 0, 0], out["depth"][0, 0, 0]
    # Projected disc: angular radius asin(r / D), image radius tan(.) * focal * res pixels.
    disc = math.tan(math.asin(RADIUS_SPHERE / RADIUS_CAM)) * K[0, 0].item() * RES
    centres = (torch.arange(RES) + 0.5) - RES / 2
    rho = (centres[None, :] ** 2 + centres[:, None] ** 2).sqrt()
    assert (opacity[rho < disc - 1] > 0.5).all()
    assert (opacity[rho > disc + 1] < 0.5).all()
    spacing = (3.4 - 2.0) / (renderer.depth_samples - 1)
    centre_depth = depth[RES // 2 - 1 : RES // 2 + 1, RES // 2 - 1 : RES // 2 + 1]
    # Centre pixels sit within half a pixel of the axis: their true depth is ~D - r.
    assert (centre_depth - (RADIUS_CAM - RADIUS_SPHERE)).abs().max() < spacing
    # White object on black: rgb is 2 * opacity - 1.
    torch.testing.assert_close(out["rgb"][0, 0], (2 * out["opacity"][0, 0] - 1).expand(3, -1, -1), atol=1e-5, rtol=0)


def test_white_background_and_empty_scene():
    renderer = TriplaneRenderer(white_back=True, depth_samples=8, importance_samples=8)
    cams = look_at(torch.tensor([[[0.0, 0.0, 2.7]]]))

    def empty(xyz):
        return torch.full((*xyz.shape[:-1], 1), -1e4), torch.zeros(*xyz.shape[:-1], 3)

    out = renderer.render_field(empty, cams, fov_to_intrinsics(30.0), 4, batch=1)
    assert (out["rgb"] == 1).all() and (out["opacity"] == 0).all()


def test_multiview_batch_equals_single_views_and_chunks():
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 8, 16, 16)
    decoder = TriplaneDecoder(in_features=8, hidden=16, n_hidden=1, out_features=3)
    cams = sample_multiview_poses(2, 3, generator=torch.Generator().manual_seed(1))
    K = fov_to_intrinsics(20.0).expand(2, 3, 3, 3)
    full = TriplaneRenderer(deterministic=True, depth_samples=12, importance_samples=12)
    chunked = TriplaneRenderer(deterministic=True, depth_samples=12, importance_samples=12, ray_chunk=37)
    batched = full(planes, decoder, cams, K, 8)
    assert batched["rgb"].shape == (2, 3, 3, 8, 8) and batched["depth"].shape == (2, 3, 1, 8, 8)
    for v in range(3):
        single = full(planes, decoder, cams[:, v : v + 1], K[:, v : v + 1], 8)
        for key in batched:
            torch.testing.assert_close(batched[key][:, v : v + 1], single[key], atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # chunks are used only when no graph is recorded
        small = chunked(planes, decoder, cams, K, 8)
    for key in batched:
        torch.testing.assert_close(small[key], batched[key], atol=1e-5, rtol=1e-5)


def _counting_field(planes, decoder, calls):
    from tri3d.ops import triplane_decode

    def field(xyz):
        calls.append(xyz.shape[1])
        return triplane_decode(planes, xyz, decoder)

    return field


def test_ray_chunks_only_without_autograd():
    """Under autograd every chunk's graph would live until backward: one pass. Without it,
    ``ray_chunk`` bounds the rays decoded at once."""
    planes = torch.randn(1, 3, 4, 8, 8)
    decoder = TriplaneDecoder(in_features=4, hidden=8, n_hidden=1, out_features=3)
    cams = sample_multiview_poses(1, 1, generator=torch.Generator().manual_seed(1))
    renderer = TriplaneRenderer(depth_samples=4, importance_samples=4, ray_chunk=10)
    calls = []
    renderer.render_field(_counting_field(planes, decoder, calls), cams, fov_to_intrinsics(30.0), 6, batch=1)
    assert calls == [36 * 4, 36 * 4]  # coarse + fine, all 36 rays at once
    calls.clear()
    with torch.no_grad():
        renderer.render_field(_counting_field(planes, decoder, calls), cams, fov_to_intrinsics(30.0), 6, batch=1)
    assert calls == [10 * 4] * 6 + [6 * 4] * 2  # 4 chunks of <= 10 rays, coarse + fine each


def test_coarse_composite_has_no_graph_and_no_colour(monkeypatch):
    """The coarse weights only place the fine samples: that composite runs without autograd
    and without colour channels; the final one composites the merged samples with both."""
    import tri3d.render.renderer as renderer_module

    seen = []
    real = renderer_module.composite

    def spy(sigma, rgb, depths):
        seen.append((torch.is_grad_enabled(), rgb.shape[-1], depths.shape[2]))
        return real(sigma, rgb, depths)

    monkeypatch.setattr(renderer_module, "composite", spy)
    planes = torch.randn(1, 3, 4, 8, 8, requires_grad=True)
    decoder = TriplaneDecoder(in_features=4, hidden=8, n_hidden=1, out_features=3)
    cams = sample_multiview_poses(1, 1, generator=torch.Generator().manual_seed(1))
    out = TriplaneRenderer(depth_samples=5, importance_samples=7)(planes, decoder, cams, fov_to_intrinsics(30.0), 4)
    assert seen == [(False, 0, 5), (True, 3, 12)]
    out["rgb"].sum().backward()
    assert planes.grad.abs().max() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="near and far"):
        TriplaneRenderer(near=3.0, far=2.0)
    r = TriplaneRenderer(depth_samples=4, importance_samples=4)
    planes = torch.randn(1, 3, 4, 8, 8)
    dec = TriplaneDecoder(in_features=4, hidden=8, out_features=3)
    with pytest.raises(ValueError, match="cam2world"):
        r(planes, dec, torch.eye(4).expand(2, 1, 4, 4), fov_to_intrinsics(30.0), 4)
    with pytest.raises(ValueError, match="at least one view"):
        r(planes, dec, torch.zeros(1, 0, 4, 4), fov_to_intrinsics(30.0), 4)
    with pytest.raises(ValueError, match="planes"):
        r(planes[:, :2], dec, torch.eye(4).expand(1, 1, 4, 4), fov_to_intrinsics(30.0), 4)
