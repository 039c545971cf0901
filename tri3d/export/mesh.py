"""Meshes from a density field: chunked grid queries, marching cubes, binary PLY."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

# EG3D's shape extraction defaults: iso-level 10 on raw density, a border of
# 30/256 of the grid forced empty so meshes close at the box.
DEFAULT_LEVEL = 10.0
BORDER_FRACTION = 30 / 256
EMPTY = -100.0


@torch.no_grad()
def density_grid(density: Callable[[torch.Tensor], torch.Tensor], resolution: int, box: float, *,
                 chunk: int = 1 << 18, device: torch.device | str = "cpu") -> np.ndarray:
    """Raw density on a ``resolution^3`` grid of voxel centres spanning ``[-box/2, box/2]^3``.

    ``density(xyz [1, N, 3]) -> [1, N, 1]``; queried ``chunk`` points at a time. Indexed
    ``[x, y, z]``.
    """
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    axis = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution * box - box / 2
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    out = np.empty(grid.shape[0], dtype=np.float32)
    for start in range(0, grid.shape[0], chunk):
        pts = grid[start : start + chunk].to(device)[None]
        out[start : start + chunk] = density(pts)[0, :, 0].float().cpu().numpy()
    return out.reshape(resolution, resolution, resolution)


def extract_mesh(grid: np.ndarray, box: float, *, level: float = DEFAULT_LEVEL,
                 border_fraction: float = BORDER_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes at ``level``; returns world-space vertices [V, 3] and faces [F, 3]."""
    try:
        from skimage.measure import marching_cubes
    except ImportError as err:
        raise RuntimeError("mesh export needs scikit-image: pip install 'tri3d[export]'") from err
    res = grid.shape[0]
    grid = grid.copy()
    pad = int(round(border_fraction * res))
    if pad > 0:
        grid[:pad], grid[-pad:] = EMPTY, EMPTY
        grid[:, :pad], grid[:, -pad:] = EMPTY, EMPTY
        grid[:, :, :pad], grid[:, :, -pad:] = EMPTY, EMPTY
    if not (grid.min() < level < grid.max()):
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    verts, faces, _, _ = marching_cubes(grid, level=level)
    verts = (verts + 0.5) / res * box - box / 2  # voxel index -> world (voxel centres)
    return verts.astype(np.float32), faces.astype(np.int64)


def write_ply(path: str | Path, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Binary little-endian PLY (float32 xyz, optional uint8 rgb), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(verts)}",
              "property float x", "property float y", "property float z"]
    vdtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        vdtype += [("r", "u1"), ("g", "u1"), ("b", "u1")]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    vertex = np.empty(len(verts), dtype=vdtype)
    vertex["x"], vertex["y"], vertex["z"] = verts[:, 0], verts[:, 1], verts[:, 2]
    if colors is not None:
        c = np.clip(np.round(colors * 255), 0, 255).astype(np.uint8)
        vertex["r"], vertex["g"], vertex["b"] = c[:, 0], c[:, 1], c[:, 2]
    face = np.empty(len(faces), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    face["n"], face["i"] = 3, faces
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(("\n".join(header) + "\n").encode())
            f.write(vertex.tobytes())
            f.write(face.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read back what ``write_ply`` wrote: (verts, faces, colors or None)."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode().splitlines()
    nv = int(next(h for h in header if h.startswith("element vertex")).split()[-1])
    nf = int(next(h for h in header if h.startswith("element face")).split()[-1])
    has_color = any("red" in h for h in header)
    vdtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + ([("r", "u1"), ("g", "u1"), ("b", "u1")] if has_color else [])
    vertex = np.frombuffer(data, dtype=vdtype, count=nv, offset=end)
    face = np.frombuffer(data, dtype=[("n", "u1"), ("i", "<i4", (3,))], count=nf, offset=end + vertex.nbytes)
    verts = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    colors = np.stack([vertex["r"], vertex["g"], vertex["b"]], axis=1) if has_color else None
    return verts, face["i"].astype(np.int64), colors
