"""``tri3d dataset shapes``: a procedural, class-labelled set of simple 3D objects.

Five analytic shapes (sphere, box, cylinder, cone, torus), each with a random rotation,
size, albedo and background colour, rendered with tri3d's own renderer from cameras
drawn uniformly over the whole sphere, with Lambertian shading under a fixed world
light. Cameras are NOT stored as labels (the GAN learns without poses); the ground-truth
depth, opacity and camera of each image go to ``ground_truth.npz`` for evaluation only.
Deterministic for a given (resolution, images per class, seed).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from tri3d.utils.files import chmod_as_created
from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, random_rotations, sample_sphere_poses

CLASS_NAMES = ("sphere", "box", "cylinder", "cone", "torus")
FORMAT_VERSION = 1
CAMERA = {"radius": 2.7, "fov_deg": 30.0, "near": 2.0, "far": 3.4}
LIGHT = (0.4, 0.8, 0.45)
DENSITY_SCALE, DENSITY_MIN, DENSITY_MAX = 3000.0, -60.0, 2000.0


def _length2(a, b):
    return torch.sqrt(a * a + b * b)


def shape_sdf(kind: int, p: torch.Tensor) -> torch.Tensor:  # [..., 3] object frame -> [...]
    """Signed distance of unit-sized analytic shapes (object frame, y up)."""
    x, y, z = p.unbind(-1)
    if kind == 0:  # sphere
        return p.norm(dim=-1) - 0.3
    if kind == 1:  # box, half-size 0.22
        q = p.abs() - 0.22
        return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)
    if kind == 2:  # cylinder, radius 0.22, half-height 0.28
        dx, dy = _length2(x, z) - 0.22, y.abs() - 0.28
        return torch.minimum(torch.maximum(dx, dy), torch.zeros_like(dx)) + _length2(dx.clamp(min=0), dy.clamp(min=0))
    if kind == 3:  # capped cone: radius 0.3 at y=-0.3 to 0.02 at y=+0.3
        h, r1, r2 = 0.3, 0.3, 0.02
        qx, qy = _length2(x, z), y
        cax = qx - torch.minimum(qx, torch.where(qy < 0, torch.full_like(qy, r1), torch.full_like(qy, r2)))
        cay = qy.abs() - h
        k2x, k2y = r2 - r1, 2 * h
        t = (((r2 - qx) * k2x + (h - qy) * k2y) / (k2x * k2x + k2y * k2y)).clamp(0, 1)
        cbx, cby = qx - r2 + k2x * t, qy - h + k2y * t
        sign = torch.where((cbx < 0) & (cay < 0), -1.0, 1.0)
        return sign * torch.sqrt(torch.minimum(cax * cax + cay * cay, cbx * cbx + cby * cby))
    if kind == 4:  # torus in the xz plane, radii 0.22 / 0.09
        return _length2(_length2(x, z) - 0.22, y) - 0.09
    raise ValueError(f"shape kind must be in [0, {len(CLASS_NAMES)}), got {kind}")


def make_field(kind: int, rotations: torch.Tensor, scales: torch.Tensor, albedo: torch.Tensor,
               sdf: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """Radiance field of ``B`` objects of one kind: xyz [B, N, 3] -> (sigma_raw, rgb).
    ``sdf`` (world xyz [B, N, 3] -> [B, N]) replaces the shapes' own signed distance."""
    light = torch.tensor(LIGHT)
    light = light / light.norm()

    def shape_distance(xyz: torch.Tensor) -> torch.Tensor:
        local = (xyz @ rotations) / scales[:, None, None]  # world -> object frame
        return shape_sdf(kind, local) * scales[:, None]

    sdf = sdf or shape_distance

    def field(xyz: torch.Tensor):
        d = sdf(xyz)
        eps = 1e-3
        grad = torch.stack(
            [sdf(xyz + eps * e) - sdf(xyz - eps * e) for e in torch.eye(3)], dim=-1
        )
        normal = grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        shade = 0.35 + 0.65 * (normal @ light).clamp(min=0)
        rgb = albedo[:, None, :] * shade[..., None]
        sigma = (-d * DENSITY_SCALE).clamp(DENSITY_MIN, DENSITY_MAX)
        return sigma.unsqueeze(-1), rgb

    return field


def random_objects(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The set's random draw of ``n`` objects, in its order: ``rotations`` [n, 3, 3],
    ``scales`` [n], ``albedo`` [n, 3] and the ``background`` colour [n, 3] each is shown over."""
    return {"rotations": random_rotations(n, generator=generator).float(),
            "scales": 0.75 + 0.35 * torch.rand(n, generator=generator),
            "albedo": 0.15 + 0.85 * torch.rand(n, 3, generator=generator),
            "background": torch.rand(n, 3, generator=generator)}


def over_background(rgb: torch.Tensor,  # [n, 3, r, r] rendered colour in [-1, 1]
                    opacity: torch.Tensor,  # [n, 1, r, r]
                    background: torch.Tensor,  # [n, 3]
                    ) -> torch.Tensor:  # [n, 3, r, r] in [0, 1]
    """An object's rendering composited over its background colour, as the set's images are."""
    return ((rgb + 1) / 2 + (1 - opacity) * background[:, :, None, None]).clamp(0, 1)


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRI3D_CACHE", Path.home() / ".cache" / "tri3d"))


def shapes_dataset_path(resolution: int = 32, per_class: int = 200, seed: int = 0, root: Path | None = None) -> Path:
    return (root or default_cache_dir()) / f"shapes-v{FORMAT_VERSION}-r{resolution}-n{per_class}-s{seed}"


def _recorded_parameters(dest: Path) -> dict | None:
    """The ``generator`` record of a complete shapes set at ``dest`` (every listed image
    present), or None when ``dest`` holds no dataset.json. Raises on an incomplete one."""
    meta_file = dest / "dataset.json"
    if not meta_file.exists():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        record, labels = meta["generator"], meta["labels"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{dest}: holds a dataset.json that is not a tri3d shapes set ({err})") from err
    missing = [name for name, _ in labels if not (dest / name).exists()]
    if missing or not (dest / "ground_truth.npz").exists():
        raise ValueError(f"{dest}: incomplete shapes set ({len(missing)} listed images missing"
                         f"{'' if (dest / 'ground_truth.npz').exists() else ', no ground_truth.npz'}); "
                         "delete it or pass rebuild=True (--rebuild)")
    return record


def make_shapes_dataset(dest: str | Path | None = None, *, resolution: int = 32, per_class: int = 200,
                        seed: int = 0, batch: int = 25, progress: bool = False, rebuild: bool = False) -> Path:
    """Render the shapes set into ``dest`` (default: the cache folder) once; returns its path.

    An existing set with the same parameters is reused; one with other parameters, an
    incomplete one, or a non-empty folder that is not a tri3d shapes set is an error
    (``rebuild=True`` replaces a tri3d shapes set, never anything else). Concurrent builds
    of the same ``dest`` are serialized by a lock file beside it; each renders into its own
    temporary folder that is renamed into place, so nothing half-written is ever visible.
    """
    if resolution < 8 or per_class < 1:
        raise ValueError(f"resolution must be >= 8 and per_class >= 1, got {resolution}, {per_class}")
    dest = Path(dest) if dest is not None else shapes_dataset_path(resolution, per_class, seed)
    wanted = {"format": FORMAT_VERSION, "resolution": resolution, "per_class": per_class, "seed": seed}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of the same set finishes first
        try:
            record = _recorded_parameters(dest)
        except ValueError:
            if not rebuild:
                raise
            record = {}
        if record == wanted and not rebuild:
            return dest
        if record is None and dest.exists() and any(dest.iterdir()):
            raise ValueError(f"{dest}: not empty and not a tri3d shapes set; refusing to write into it (choose "
                             "another --dest)")
        if record is not None and record != wanted and not rebuild:
            raise ValueError(f"{dest}: holds a shapes set with other parameters ({record}); pass --rebuild to "
                             f"replace it with {wanted}, or choose another --dest")
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        try:
            _render_shapes(tmp, resolution=resolution, per_class=per_class, seed=seed, batch=batch,
                           progress=progress, record=wanted)
            _publish(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def _publish(tmp: Path, dest: Path) -> None:
    """Move the finished set ``tmp`` to ``dest``, replacing an empty folder or a tri3d
    shapes set (moved aside first, then deleted)."""
    chmod_as_created(tmp)  # mkdtemp creates 0700: give the set the permissions of a plain mkdir
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _render_shapes(tmp: Path, *, resolution: int, per_class: int, seed: int, batch: int, progress: bool,
                   record: dict) -> None:
    """Render the images, ``ground_truth.npz`` and ``dataset.json`` into ``tmp``."""
    (tmp / "images").mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    renderer = TriplaneRenderer(depth_samples=48, importance_samples=48, near=CAMERA["near"], far=CAMERA["far"],
                                deterministic=True, ray_chunk=1 << 16)
    K = fov_to_intrinsics(CAMERA["fov_deg"])
    labels, gt = [], {"depth": [], "opacity": [], "cam2world": [], "classes": [], "albedo": [], "background": []}
    index = 0
    with torch.no_grad():
        for kind in range(len(CLASS_NAMES)):
            for start in range(0, per_class, batch):
                n = min(batch, per_class - start)
                cams = sample_sphere_poses(n, CAMERA["radius"], generator=g)
                obj = random_objects(n, g)
                albedo, background = obj["albedo"], obj["background"]
                out = renderer.render_field(make_field(kind, obj["rotations"], obj["scales"], albedo), cams[:, None],
                                            K, resolution, batch=n)
                opacity = out["opacity"][:, 0]
                img = over_background(out["rgb"][:, 0], opacity, background)
                pixels = (img * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
                for k in range(n):
                    name = f"images/{index:06d}.png"
                    Image.fromarray(pixels[k]).save(tmp / name)
                    labels.append([name, kind])
                    index += 1
                gt["depth"].append(out["depth"][:, 0, 0].numpy())
                gt["opacity"].append(opacity[:, 0].numpy())
                gt["cam2world"].append(cams.numpy())
                gt["classes"].append(np.full(n, kind))
                gt["albedo"].append(albedo.numpy())
                gt["background"].append(background.numpy())
                if progress:
                    print(f"shapes: {index}/{per_class * len(CLASS_NAMES)}", flush=True)
    np.savez_compressed(tmp / "ground_truth.npz", intrinsics=K.numpy(), **{k: np.concatenate(v) for k, v in gt.items()})
    meta = {"labels": labels, "class_names": list(CLASS_NAMES), "camera": CAMERA, "generator": record}
    (tmp / "dataset.json").write_text(json.dumps(meta))
