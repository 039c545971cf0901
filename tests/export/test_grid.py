"""PNG grid layout and atomic writes."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from tri3d.export import image_grid, save_png


def test_grid_layout_rgb_then_depth(tmp_path):
    rgb = torch.zeros(2, 3, 3, 4, 5)
    rgb[1, 2, 0] = 1.0  # object 1, view 2: red channel full
    depth = torch.full((2, 3, 1, 4, 5), 2.0)
    depth[0, 1] = 3.0  # object 0, view 1 is the farthest -> darkest
    grid = image_grid(rgb, depth)
    assert grid.shape == (2 * 4, 3 * 2 * 5, 3)
    tile = lambda b, v, t: grid[b * 4 : (b + 1) * 4, (2 * v + t) * 5 : (2 * v + t + 1) * 5]  # noqa: E731
    assert (tile(1, 2, 0)[..., 0] == 255).all() and (tile(1, 2, 0)[..., 1] == 128).all()
    assert (tile(0, 1, 1) == 0).all() and (tile(0, 0, 1) == 255).all()
    path = save_png(grid, tmp_path / "sub" / "grid.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), grid)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary left behind


def test_png_honours_the_umask(tmp_path):
    import os

    import numpy as np

    from tri3d.export import save_png

    old = os.umask(0o022)
    try:
        path = save_png(np.zeros((4, 4, 3), dtype=np.uint8), tmp_path / "a.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # readable by others, as a plain open() would make it
