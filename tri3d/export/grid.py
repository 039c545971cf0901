"""PNG grids of rendered views: rgb and depth side by side."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from tri3d.ops._checks import check_tensor
from tri3d.utils.files import chmod_as_created


def image_grid(
    rgb: Tensor,  # [B, V, 3, H, W] in [-1, 1]
    depth: Tensor | None = None,  # [B, V, 1, H, W]
) -> np.ndarray:  # [B*H, V*W*(2 if depth else 1), 3] uint8
    """Tile views into rows (one per object); each view's depth sits right of its rgb.

    Depth is shown as grey, near = bright, normalized over the finite depths of the grid.
    """
    check_tensor("rgb", rgb, ("B", "V", 3, "H", "W"))
    B, V, _, H, W = rgb.shape
    tiles = [((rgb.detach().float().clamp(-1, 1) + 1) * 127.5)]
    if depth is not None:
        check_tensor("depth", depth, (B, V, 1, H, W))
        d = depth.detach().float()
        finite = d[torch.isfinite(d)]
        lo, hi = (finite.min(), finite.max()) if finite.numel() else (torch.tensor(0.0), torch.tensor(1.0))
        shade = 1 - ((d - lo) / (hi - lo).clamp(min=1e-8)).clamp(0, 1)
        tiles.append((shade * 255).expand(-1, -1, 3, -1, -1))
    grid = torch.stack(tiles, dim=2)  # [B, V, T, 3, H, W]
    grid = grid.permute(0, 4, 1, 2, 5, 3).reshape(B * H, V * len(tiles) * W, 3)
    return grid.round().to(torch.uint8).cpu().numpy()


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:  # image: [H, W, 3] uint8
    """Write a PNG atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(image).save(f, format="PNG")
        chmod_as_created(tmp)  # mkstemp creates 0600: the permissions of a plain open()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
