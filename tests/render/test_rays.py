"""Pixel rays project back onto their pixel centres."""
from __future__ import annotations

import pytest
import torch

from tri3d.render.camera import fov_to_intrinsics, sample_sphere_poses
from tri3d.render.rays import pixel_rays


def test_rays_reproject_to_pixel_centres():
    g = torch.Generator().manual_seed(0)
    poses = sample_sphere_poses(3, radius=2.5, generator=g).double()
    K = fov_to_intrinsics(25.0).double().expand(3, 3, 3).clone()
    K[1, 0, 2] = 0.45  # off-centre principal point
    res = 7
    origins, dirs = pixel_rays(poses, K, res)
    assert origins.shape == dirs.shape == (3, res * res, 3)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(3, res * res, dtype=torch.float64))
    points = origins + 1.7 * dirs
    world2cam = torch.linalg.inv(poses)
    cam = (points @ world2cam[:, :3, :3].transpose(1, 2)) + world2cam[:, None, :3, 3]
    uv = (cam @ K.transpose(1, 2))
    uv = uv[..., :2] / uv[..., 2:]
    rows, cols = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
    expected = torch.stack([(cols.reshape(-1) + 0.5) / res, (rows.reshape(-1) + 0.5) / res], dim=-1).double()
    torch.testing.assert_close(uv, expected.expand(3, -1, -1))
    assert (cam[..., 2] > 0).all()  # in front of the camera


def test_bad_arguments():
    with pytest.raises(ValueError, match="resolution"):
        pixel_rays(torch.eye(4), torch.eye(3), 0)
    with pytest.raises(ValueError, match="cam2world"):
        pixel_rays(torch.eye(3), torch.eye(3), 4)
