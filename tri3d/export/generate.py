"""``tri3d generate``: multi-view grids, orbit videos and meshes from a trained generator."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tri3d.export.grid import image_grid, save_png
from tri3d.export.mesh import density_grid, extract_mesh, write_ply
from tri3d.models import TriplaneGenerator
from tri3d.render.camera import fov_to_intrinsics, orbit_poses, sample_multiview_poses
from tri3d.runs import checkpoint
from tri3d.runs.config import TrainConfig


def parse_int_list(text: str, name: str) -> list[int]:
    """``"0-3,7,9-10"`` -> ``[0, 1, 2, 3, 7, 9, 10]``; raises ``ValueError`` naming ``name``."""
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"{name} must look like 0-7,9 (non-negative ranges), got {text!r}")
        lo = int(m.group(1))
        out.extend(range(lo, int(m.group(2) or lo) + 1))
    return out


def load_generator(ckpt: str | Path, device: torch.device | str = "cpu",
                   weights: str = "G_ema") -> tuple[TriplaneGenerator, TrainConfig, Path]:
    """The EMA generator (``weights="G"``: the training generator) of a run folder (newest
    snapshot) or a snapshot folder."""
    if weights not in ("G_ema", "G"):
        raise ValueError(f"weights must be 'G_ema' or 'G', got {weights!r}")
    snap = checkpoint.find_snapshot(ckpt)
    cfg = TrainConfig.from_dict(checkpoint.load_config(snap), where=str(snap / "config.json"))
    G = TriplaneGenerator(cfg.G).to(device).eval().requires_grad_(False)
    checkpoint.load_weights(snap, weights, G, device)
    return G, cfg, snap


@torch.no_grad()
def generate(G: TriplaneGenerator, cfg: TrainConfig, *, classes: list[int], seeds: list[int], views: int,
             out_dir: str | Path, truncation_psi: float = 1.0, video: bool = False, video_frames: int = 48,
             mesh: bool = False, mesh_resolution: int = 256, save_density: bool = False) -> list[Path]:
    """Write, per (class, seed): ``c<class>-s<seed>.png`` (rgb | depth for each view) with a
    JSON sidecar (class, seed, truncation, cam2world of every view, fov; written last, so a
    sidecar means its outputs are complete), optionally ``...-orbit.mp4`` (``.gif`` without
    imageio-ffmpeg), ``...-mesh.ply`` and (``save_density``) ``...-density.npy``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_cls = G.config.num_classes
    bad = [c for c in classes if (n_cls and not 0 <= c < n_cls) or (not n_cls and c != 0)]
    if bad:
        raise ValueError(f"classes must be in [0, {max(n_cls, 1)}), got {bad}")
    device = next(G.parameters()).device
    K = fov_to_intrinsics(cfg.fov_deg).to(device)
    written = []
    for c in classes:
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            z = torch.randn(1, G.config.z_dim, generator=g).to(device)
            label = torch.tensor([c], device=device) if n_cls else None
            cams = sample_multiview_poses(1, views, cfg.camera_radius, 0.0, 0.0, generator=g).to(device)
            ws = G.mapping(z, label, truncation_psi=truncation_psi)
            stem = out_dir / f"c{c:04d}-s{seed:06d}"
            meta = {"class": c, "seed": seed, "truncation_psi": truncation_psi, "fov_deg": cfg.fov_deg,
                    "cam2world": cams[0].cpu().tolist()}
            written += export_sample(G, ws, cams, K, cfg, stem, video=video, video_frames=video_frames,
                                     mesh=mesh, mesh_resolution=mesh_resolution, save_density=save_density)
            sidecar = stem.with_suffix(".json")
            tmp = sidecar.with_name(f".{sidecar.name}.tmp")
            tmp.write_text(json.dumps(meta, indent=1))
            tmp.replace(sidecar)
            written.append(sidecar)
    return written


@torch.no_grad()
def export_sample(G: TriplaneGenerator, ws: torch.Tensor, cams: torch.Tensor, K: torch.Tensor, cfg: TrainConfig,
                  stem: Path, *, video: bool = False, video_frames: int = 48, mesh: bool = False,
                  mesh_resolution: int = 256, save_density: bool = False) -> list[Path]:
    """``<stem>.png`` (rgb | depth for the views ``cams [1, V, 4, 4]``), optionally the orbit
    video, ``<stem>-mesh.ply`` and (``save_density``, with ``mesh``) the raw density grid
    ``<stem>-density.npy`` (``mesh_resolution^3`` floats: 64 MB at 256) of one latent
    ``ws [1, num_ws, w_dim]``."""
    with G.deterministic_rendering():
        out = G.synthesize(ws, cams, K, noise_mode="const")
        depth = out["depth"]
        if depth.shape[-1] != out["image"].shape[-1]:
            depth = torch.nn.functional.interpolate(depth[0], size=out["image"].shape[-2:])[None]
        written = [save_png(image_grid(out["image"], depth), stem.with_suffix(".png"))]
        if video:
            written.append(_orbit_video(G, ws, cfg, K, video_frames, stem.with_name(f"{stem.name}-orbit")))
        if mesh:
            field = G.field(out["planes"])
            device = ws.device
            grid = density_grid(lambda x: field(x)[0], mesh_resolution, G.renderer.box_warp, device=device)
            if save_density:
                density = stem.with_name(f"{stem.name}-density.npy")
                tmp = density.with_name(f".{density.stem}.tmp.npy")
                np.save(tmp, grid)
                tmp.replace(density)
                written.append(density)
            verts, faces = extract_mesh(grid, G.renderer.box_warp)
            colors = None
            if len(verts):
                colors = field(torch.from_numpy(verts).to(device)[None])[1][0, :, :3].clamp(0, 1).cpu().numpy()
            written.append(write_ply(stem.with_name(f"{stem.name}-mesh.ply"), verts, faces, colors))
    return written


def _orbit_video(G, ws, cfg: TrainConfig, K, frames: int, stem: Path) -> Path:
    """Orbit at 20 degrees elevation: ``<stem>.mp4`` when imageio-ffmpeg is installed, else a GIF."""
    poses = orbit_poses(frames, cfg.camera_radius, elevation_deg=20.0).to(ws.device)[None]
    images = []
    for chunk in poses.split(8, dim=1):
        images.append(G.synthesize(ws, chunk, K, noise_mode="const")["image"][0])
    frames_u8 = ((torch.cat(images).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    if importlib.util.find_spec("imageio") and importlib.util.find_spec("imageio_ffmpeg"):
        import imageio.v2 as imageio

        path = stem.with_suffix(".mp4")
        tmp = stem.with_name(f".{stem.name}.tmp.mp4")
        imageio.mimwrite(tmp, list(frames_u8), fps=24, macro_block_size=1)
    else:
        path = stem.with_suffix(".gif")
        tmp = stem.with_name(f".{stem.name}.tmp.gif")
        pil = [Image.fromarray(f) for f in frames_u8]
        pil[0].save(tmp, format="GIF", save_all=True, append_images=pil[1:], duration=60, loop=0)
    tmp.replace(path)
    return path
