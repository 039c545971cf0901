"""Camera model: sphere uniformity, look-at, poles, multi-view spread, intrinsics."""
from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from tri3d.render.camera import (
    fov_to_intrinsics,
    look_at,
    multiview_base_angle_deg,
    orbit_poses,
    sample_multiview_poses,
    sample_sphere_poses,
)


def assert_valid_poses(poses: torch.Tensor, radius: float, atol: float = 1e-5) -> None:
    rot, pos = poses[..., :3, :3].double(), poses[..., :3, 3].double()
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.isfinite(poses).all()
    assert (rot.transpose(-1, -2) @ rot - eye).abs().max() < atol
    assert (torch.det(rot) - 1).abs().max() < atol
    # forward (+z column) points at the origin, from the requested radius
    assert (pos.norm(dim=-1) - radius).abs().max() < 1e-4
    assert (rot[..., :, 2] + pos / pos.norm(dim=-1, keepdim=True)).abs().max() < atol
    assert (poses[..., 3, :] - torch.tensor([0.0, 0, 0, 1])).abs().max() == 0


def test_sphere_poses_are_area_uniform_and_look_at_origin():
    g = torch.Generator().manual_seed(0)
    poses = sample_sphere_poses(100_000, radius=2.7, generator=g)
    assert_valid_poses(poses, 2.7)
    pos = poses[:, :3, 3].double().numpy() / 2.7
    for axis in range(3):  # Archimedes: each coordinate of a uniform point is U(-1, 1)
        assert stats.kstest(pos[:, axis], "uniform", args=(-1, 2)).pvalue > 0.01
    azimuth = torch.atan2(poses[:, 2, 3], poses[:, 0, 3]).numpy()
    assert stats.kstest(azimuth, "uniform", args=(-math.pi, 2 * math.pi)).pvalue > 0.01


def test_exact_poles_give_finite_orthonormal_poses():
    origins = torch.tensor([[0.0, 2.0, 0.0], [0.0, -2.0, 0.0], [0.0, 1e-9, 2.0], [1e-12, 2.0, 0.0]])
    assert_valid_poses(look_at(origins), 2.0)


def test_look_at_is_opencv_and_broadcasts():
    pose = look_at(torch.tensor([0.0, 0.0, 3.0]))
    # Camera on +z looking at the origin: forward -z, image y points down (world -y), x completes.
    torch.testing.assert_close(pose[:3, 2], torch.tensor([0.0, 0.0, -1.0]))
    torch.testing.assert_close(pose[:3, 1], torch.tensor([0.0, -1.0, 0.0]))
    torch.testing.assert_close(pose[:3, 0], torch.tensor([1.0, 0.0, 0.0]))
    target = torch.tensor([0.1, 0.2, -0.3])
    origins = torch.randn(4, 5, 3) * 3
    poses = look_at(origins, target)
    assert poses.shape == (4, 5, 4, 4)
    fwd = (target - origins) / (target - origins).norm(dim=-1, keepdim=True)
    torch.testing.assert_close(poses[..., :3, 2], fwd)


@pytest.mark.parametrize("views, perturb", [(2, 10.0), (3, 5.0), (4, 15.0), (6, 0.0)])
def test_multiview_sets_are_spread_and_not_rigid(views, perturb):
    g = torch.Generator().manual_seed(views)
    min_angle = multiview_base_angle_deg(views) - 2 * perturb
    poses = sample_multiview_poses(2000, views, radius=2.0, min_angle_deg=min_angle, perturb_deg=perturb, generator=g)
    assert poses.shape == (2000, views, 4, 4)
    assert_valid_poses(poses, 2.0)
    d = poses[..., :3, 3].double() / 2.0
    cos = (d.unsqueeze(1) * d.unsqueeze(2)).sum(-1).clamp(-1, 1)
    ang = torch.rad2deg(torch.arccos(cos))
    off_diag = ~torch.eye(views, dtype=torch.bool)
    assert ang[:, off_diag].min() >= min_angle - 1e-3
    if perturb > 0:  # pairwise angles vary from set to set
        assert ang[:, 0, 1].std() > 0.1
    # every view on its own is still uniform over the whole sphere
    assert stats.kstest(d[:, -1, 1].numpy(), "uniform", args=(-1, 2)).pvalue > 0.01


def test_multiview_bad_arguments():
    with pytest.raises(ValueError, match="views"):
        sample_multiview_poses(4, 0)
    with pytest.raises(ValueError, match="min_angle_deg"):
        sample_multiview_poses(4, 3, min_angle_deg=119.0, perturb_deg=10.0)
    with pytest.raises(ValueError, match="radius"):
        sample_sphere_poses(4, radius=-1.0)
    with pytest.raises(ValueError, match="n must be"):
        sample_sphere_poses(0)
    with pytest.raises(ValueError, match="origins must be finite"):
        look_at(torch.tensor([float("nan"), 0.0, 1.0]))


def test_fov_to_intrinsics_closed_form():
    # tan(fov/2) * sqrt(2) == 1  <=>  focal 1
    fov = math.degrees(2 * math.atan(1 / math.sqrt(2)))
    k = fov_to_intrinsics(fov)
    torch.testing.assert_close(k, torch.tensor([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]]))
    assert fov_to_intrinsics(30.0)[0, 0] > fov_to_intrinsics(60.0)[0, 0]
    with pytest.raises(ValueError, match="fov_deg"):
        fov_to_intrinsics(180.0)


def test_orbit_poses_keep_elevation():
    poses = orbit_poses(12, radius=3.0, elevation_deg=20.0)
    assert_valid_poses(poses, 3.0)
    elev = torch.rad2deg(torch.asin(poses[:, 1, 3] / 3.0))
    torch.testing.assert_close(elev, torch.full((12,), 20.0), atol=1e-4, rtol=0)
    az = torch.atan2(poses[:, 2, 3], poses[:, 0, 3])
    steps = torch.remainder(az.diff(), 2 * math.pi)
    torch.testing.assert_close(steps, torch.full((11,), 2 * math.pi / 12), atol=1e-5, rtol=0)
