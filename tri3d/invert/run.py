"""``tri3d invert``: load an image, pick the class, run PTI, write and evaluate the result."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from tri3d.data.convert import center_crop_resize
from tri3d.export.generate import export_sample
from tri3d.export.grid import save_png
from tri3d.invert.perceptual import FeaturePerceptual, VGGPerceptual
from tri3d.invert.pti import InversionConfig, depth_error, invert, psnr, render
from tri3d.metrics.download import metric_file
from tri3d.render.camera import fov_to_intrinsics, look_at, sample_multiview_poses, sphere_points


def load_target(path: str | Path, resolution: int) -> torch.Tensor:  # -> [3, R, R] in [-1, 1]
    """Read an image: grayscale is replicated, RGBA drops alpha, any size is centre-cropped
    and resized to the generator's resolution. Errors name the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img = center_crop_resize(img, resolution)
    except Exception as err:
        raise ValueError(f"{path}: unreadable image ({err})") from err
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 127.5 - 1


def parse_pose(text: str, radius: float) -> torch.Tensor:  # -> [4, 4]
    """``"front"`` (camera on +z) or ``"AZIMUTH,ELEVATION"`` in degrees (azimuth from +z toward +x)."""
    if text == "front":
        az, el = 0.0, 0.0
    else:
        try:
            az, el = (float(v) for v in text.split(","))
        except ValueError as err:
            raise ValueError(f"--pose must be 'front' or 'AZIMUTH,ELEVATION' in degrees, got {text!r}") from err
        if not -90 <= el <= 90:
            raise ValueError(f"--pose elevation must be in [-90, 90], got {el}")
    theta = torch.tensor(math.radians(90.0 - az), dtype=torch.float64)  # sphere_points azimuth is from +x
    phi = torch.tensor(math.radians(90.0 - el), dtype=torch.float64)
    return look_at(sphere_points(theta, phi, radius).float())


def predict_class(classifier, target: torch.Tensor) -> int:
    """Class of ``target`` ([-1, 1]) from a detector with ``probabilities(uint8 images)``."""
    images = ((target.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[None]
    return int(classifier.probabilities(images).argmax(dim=1)[0])


def run_inversion(G, train_cfg, target: torch.Tensor, *, c: int | None, pose: torch.Tensor, out_dir: str | Path,
                  perceptual, cfg: InversionConfig, reference_depth: torch.Tensor | None = None,
                  reference_mask: torch.Tensor | None = None, scale_invariant_depth: bool = False,
                  video: bool = True, mesh: bool = True, mesh_resolution: int = 128, progress: bool = True) -> dict:
    """Invert, then write ``reconstruction.png`` (input | reconstruction | depth),
    ``multiview.png``, the orbit video, the mesh, ``tuned_G.safetensors`` +
    ``pivot.safetensors`` and ``inversion.json`` (losses, settings, evaluation)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = next(G.parameters()).device
    K = fov_to_intrinsics(train_cfg.fov_deg).to(device)
    pose = pose.to(device)
    before = render(G, _start(G, c, cfg), pose, K)
    result = invert(G, target, c=c, cam2world=pose, intrinsics=K, perceptual=perceptual, cfg=cfg, progress=progress)
    with torch.no_grad():
        after = render(result.G, result.ws, pose, K)
    recon, depth = after["image"][0, 0].cpu(), after["depth"][0, 0, 0].cpu()
    shade = ((depth - depth.min()) / (depth.max() - depth.min()).clamp(min=1e-8)).mul(2).sub(1)
    row = torch.cat([target.cpu(), recon, (-shade)[None].expand(3, -1, -1)], dim=2)
    save_png(((row.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy(),
             out_dir / "reconstruction.png")
    cams = torch.cat([pose[None, None], sample_multiview_poses(1, 3, train_cfg.camera_radius, 0.0, 0.0,
                                                               generator=torch.Generator().manual_seed(0)).to(device)],
                     dim=1)
    files = export_sample(result.G, result.ws, cams, K, train_cfg, out_dir / "multiview", video=video, mesh=mesh,
                          mesh_resolution=mesh_resolution)
    save_file({k: v.contiguous().cpu() for k, v in result.G.state_dict().items()}, str(out_dir / "tuned_G.safetensors"))
    save_file({"ws": result.ws.cpu().contiguous(), "ws_init": result.ws_init.cpu().contiguous()},
              str(out_dir / "pivot.safetensors"))
    report = {
        "class": c, "pose": pose.cpu().tolist(), "config": cfg.to_dict(), "perceptual": perceptual.name,
        "losses": result.losses, "files": [str(f) for f in files],
        "psnr_init": psnr(before["image"][0, 0].cpu(), target.cpu()), "psnr": psnr(recon, target.cpu()),
        "perceptual_distance": float(perceptual(after["image"][:, 0], target.to(device)[None]).item()),
    }
    if reference_depth is not None:
        ref = reference_depth.cpu()
        mask = reference_mask.cpu() if reference_mask is not None else torch.isfinite(ref) & (ref > 0)
        report["depth_error"] = depth_error(depth, ref, mask, scale_invariant=scale_invariant_depth)
        report["depth_error_init"] = depth_error(before["depth"][0, 0, 0].cpu(), ref, mask,
                                                 scale_invariant=scale_invariant_depth)
    (out_dir / "inversion.json").write_text(json.dumps(report, indent=1))
    return report


def _start(G, c, cfg: InversionConfig):
    from tri3d.invert.pti import class_average_w

    return class_average_w(G, c, cfg.w_avg_samples, cfg.seed)


def make_perceptual(vgg: str | None, detector=None, device="cpu"):
    """VGG16 LPIPS from a file, or from the published ``vgg16.pt`` fetched into the cache
    (``vgg="vgg16"``), else the documented fallback (``detector``'s features + pixels)."""
    if vgg == "vgg16":
        vgg = str(metric_file("vgg16.pt"))
    return VGGPerceptual(vgg, device) if vgg else FeaturePerceptual(detector)
