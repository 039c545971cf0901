"""Mesh export of an analytic sphere: watertight, right radius, PLY round trip."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytest.importorskip("skimage")

from tri3d.export.mesh import density_grid, extract_mesh, read_ply, write_ply  # noqa: E402


def test_sphere_mesh_is_watertight_with_the_right_radius(tmp_path):
    radius, res, box = 0.3, 64, 1.0

    def density(xyz):  # raw density crossing the iso-level 10 at |x| = radius
        return 10 + 100 * (radius - xyz.norm(dim=-1, keepdim=True))

    grid = density_grid(density, res, box, chunk=10_000)
    verts, faces = extract_mesh(grid, box)
    r = np.linalg.norm(verts, axis=1)
    assert abs(r.mean() - radius) < box / res and r.std() < box / res
    edges = Counter(tuple(sorted((int(f[i]), int(f[(i + 1) % 3])))) for f in faces for i in range(3))
    assert set(edges.values()) == {2}  # every edge shared by exactly two triangles: closed surface
    colors = np.random.default_rng(0).random((len(verts), 3))
    path = write_ply(tmp_path / "sphere.ply", verts, faces, colors)
    v2, f2, c2 = read_ply(path)
    np.testing.assert_array_equal(v2, verts)
    np.testing.assert_array_equal(f2, faces)
    np.testing.assert_array_equal(c2, np.round(colors * 255).astype(np.uint8))


def test_empty_field_gives_empty_mesh():
    verts, faces = extract_mesh(np.full((8, 8, 8), -5.0, np.float32), 1.0)
    assert verts.shape == (0, 3) and faces.shape == (0, 3)
