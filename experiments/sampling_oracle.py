"""How well could a perfect generator score from depth alone at a given sample count?

Renders the true shapes (the shapes set's own analytic fields, fresh random objects) the
way ``tri3d metrics`` renders a generator's views (evenly spaced samples, no jitter), with
``--samples`` coarse + importance samples per ray between the set's near and far planes, and scores their depth
nearness with the depth judge, as ``tri3d metrics`` scores a generator's views. The
density of each field is ``-sdf * scale`` (the set itself is rendered with scale 3000 and
48 + 48 samples); a smaller ``--density-scale`` is a softer surface, like the ones a
generator learns. The result bounds the depth-only class accuracy of any generator
rendered with those samples and that softness. Each row also gives the mean ray
distortion (``tri3d.render.distortion``: 0 for weight on one thin interval, larger as it
spreads along the ray) of the object pixels (opacity > 0.5); ``--ckpt RUN`` scores a
trained generator's views (classes in turn, whole-sphere poses, its own renderer) the same
way, which places its surfaces' softness on the oracle's scale.

    python experiments/sampling_oracle.py --samples 48 24 12 --density-scale 3000 100 30 [--ckpt RUN]
"""
from __future__ import annotations

import argparse
import itertools

import torch

from tri3d.data.shapes import CAMERA, CLASS_NAMES, DENSITY_MAX, DENSITY_MIN, shape_sdf
from tri3d.export.generate import load_generator
from tri3d.metrics.shapes_judges import FLAT_CARD, depth_nearness, load_shapes_judge
from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, random_rotations, sample_sphere_poses


def density_field(kind: int, rotations: torch.Tensor,  # [B, 3, 3]
                  scales: torch.Tensor,  # [B]
                  density_scale: float):
    """xyz [B, N, 3] -> (sigma_raw [B, N, 1], rgb [B, N, 3]) of ``B`` objects of one kind
    (rgb is unused: depth only)."""

    def field(xyz: torch.Tensor):
        local = (xyz @ rotations) / scales[:, None, None]
        d = shape_sdf(kind, local) * scales[:, None]
        sigma = (-d * density_scale).clamp(DENSITY_MIN, DENSITY_MAX)
        return sigma.unsqueeze(-1), torch.zeros(*xyz.shape[:2], 3)

    return field


def score(render, per_class: int, resolution: int, seed: int) -> dict:
    """Depth judge's accuracy (mean and per class), flat-card fraction and mean object-pixel
    distortion of ``render(kind, cams, generator) -> renderer outputs``, per class."""
    judge = load_shapes_judge("depth", resolution)
    g = torch.Generator().manual_seed(seed)
    right, flat = torch.zeros(len(CLASS_NAMES)), torch.zeros(len(CLASS_NAMES))
    distortion, object_pixels = 0.0, 0
    with torch.no_grad():
        for kind in range(len(CLASS_NAMES)):
            out = render(kind, sample_sphere_poses(per_class, CAMERA["radius"], generator=g)[:, None], g)
            opacity = out["opacity"][:, 0]
            nearness = depth_nearness(out["depth"][:, 0], opacity)
            predicted = judge.probabilities(nearness).argmax(dim=1)
            right[kind] = (predicted == kind).float().mean()
            flat[kind] = (predicted == FLAT_CARD).float().mean()
            solid = opacity > 0.5
            distortion += out["distortion"][:, 0][solid].sum().item()
            object_pixels += int(solid.sum())
    return dict(accuracy=right.mean().item(), per_class=right.tolist(), flat=flat.mean().item(),
                distortion=distortion / max(object_pixels, 1))


def oracle(samples: int, density_scale: float, resolution: int, deterministic: bool):
    """Renders true shapes with ``samples`` + ``samples`` samples and that density scale."""
    renderer = TriplaneRenderer(depth_samples=samples, importance_samples=samples, near=CAMERA["near"],
                                far=CAMERA["far"], deterministic=deterministic, ray_chunk=1 << 16)
    K = fov_to_intrinsics(CAMERA["fov_deg"])

    def render(kind: int, cams: torch.Tensor, g: torch.Generator) -> dict:  # cams [n, 1, 4, 4]
        n = cams.shape[0]
        rot = random_rotations(n, generator=g).float()
        scale = 0.75 + 0.35 * torch.rand(n, generator=g)
        return renderer.render_field(density_field(kind, rot, scale, density_scale), cams, K, resolution, batch=n,
                                     generator=g, with_distortion=True)

    return render


def generator_views(ckpt: str):
    """Renders a trained generator's EMA views of each class (its own renderer and fov)."""
    G, cfg, _ = load_generator(ckpt)
    K = fov_to_intrinsics(cfg.fov_deg)

    def render(kind: int, cams: torch.Tensor, g: torch.Generator) -> dict:  # cams [n, 1, 4, 4]
        n = cams.shape[0]
        z = torch.randn(n, cfg.G.z_dim, generator=g)
        c = torch.full((n,), kind, dtype=torch.long) if cfg.G.num_classes else None
        with G.deterministic_rendering():  # as tri3d metrics renders G
            return G(z, c, cams, K, noise_mode="const", with_distortion=True)

    return render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[48, 24, 12],
                        help="coarse (= importance) samples per ray, >= 2 (tiny: 12)")
    parser.add_argument("--density-scale", type=float, nargs="+", default=[3000.0, 100.0, 30.0],
                        help="density per unit of signed distance inside the surface, > 0 (the set: 3000)")
    parser.add_argument("--per-class", type=int, default=100, help="objects per class, >= 1")
    parser.add_argument("--resolution", type=int, default=16, help="image size in pixels (tiny: 16)")
    parser.add_argument("--seed", type=int, default=7, help="objects and cameras (the judges train on seeds 1, 2)")
    parser.add_argument("--jittered", action="store_true",
                        help="jittered samples, as in training (default: evenly spaced, as the metrics render G)")
    parser.add_argument("--ckpt", nargs="*", default=[],
                        help="also score these runs' generators (run folders or snapshots)")
    args = parser.parse_args()
    if min(args.samples) < 2:
        parser.error(f"--samples must be >= 2, got {min(args.samples)}")
    if min(args.density_scale) <= 0:
        parser.error(f"--density-scale must be > 0, got {min(args.density_scale)}")
    if args.per_class < 1:
        parser.error(f"--per-class must be >= 1, got {args.per_class}")
    print("| views | samples (coarse + importance) | density scale | depth-only class accuracy | "
          + " / ".join(CLASS_NAMES) + " | called flat cards | object-pixel distortion |")
    print("|---|---|---:|---:|---|---:|---:|")

    def row(label: str, samples: str, density: str, r: dict) -> None:
        print(f"| {label} | {samples} | {density} | {r['accuracy']:.3f} | "
              + " / ".join(f"{a:.2f}" for a in r["per_class"]) + f" | {r['flat']:.2f} | {r['distortion']:.4f} |",
              flush=True)

    for samples, density_scale in itertools.product(args.samples, args.density_scale):
        r = score(oracle(samples, density_scale, args.resolution, not args.jittered), args.per_class,
                  args.resolution, args.seed)
        row("true shapes", f"{samples} + {samples}", f"{density_scale:g}", r)
    for ckpt in args.ckpt:
        row(ckpt, "its own", "learned", score(generator_views(ckpt), args.per_class, args.resolution, args.seed))


if __name__ == "__main__":
    main()
