"""Can 16 px rgb views tell a shape from a card painted like it?

Renders each class of the shapes set as the set renders it (random rotation, size, albedo
and background, whole-sphere cameras, 48 + 48 samples, Lambertian shading under the set's
world light) three ways: the true shape; the shape squashed to ``--thickness`` of its size
along one of its own axes, with its own shading (a flat solid); and the same flat solid
painted with the *true* shape's shading (each point of the card takes the colour of the
true surface it was squashed from: a card painted to look like the shape). It scores each
with the rgb judge (class right) and the depth judge (class right, called flat cards),
as ``tri3d metrics`` scores a generator's views. Where the painted card passes the rgb
judge and fails the depth judge, a generator trained on rgb alone is free to draw the
class as a card.

    python experiments/flat_shapes.py --per-class 200 --thickness 0.05
"""
from __future__ import annotations

import argparse

import torch

from tri3d.data.shapes import (CAMERA, CLASS_NAMES, DENSITY_MAX, DENSITY_MIN, DENSITY_SCALE, make_field,
                               over_background, random_objects, shape_sdf)
from tri3d.metrics.shapes_judges import FLAT_CARD, depth_nearness, load_shapes_judge
from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, sample_sphere_poses

AXES = "xyz"


def squashed_sdf(kind: int, rotations: torch.Tensor,  # [B, 3, 3]
                 scales: torch.Tensor,  # [B]
                 squash: torch.Tensor):  # [3] per object axis
    """World sdf (approximate: a bound scaled by the thinnest axis) of the squashed shapes."""

    def sdf(xyz: torch.Tensor) -> torch.Tensor:  # [B, N, 3] -> [B, N]
        local = (xyz @ rotations) / scales[:, None, None]
        return shape_sdf(kind, local / squash) * squash.min() * scales[:, None]

    return sdf


def flat_field(kind: int, rotations: torch.Tensor, scales: torch.Tensor, albedo: torch.Tensor,
               squash: torch.Tensor, painted: bool):
    """xyz [B, N, 3] -> (sigma_raw, rgb) of the squashed shapes, shaded as solids of their
    own (``painted`` False) or with the true shape's colour at the unsquashed point."""
    sdf = squashed_sdf(kind, rotations, scales, squash)
    if not painted:
        return make_field(kind, rotations, scales, albedo, sdf=sdf)
    true = make_field(kind, rotations, scales, albedo)

    def field(xyz: torch.Tensor):
        sigma = (-sdf(xyz) * DENSITY_SCALE).clamp(DENSITY_MIN, DENSITY_MAX).unsqueeze(-1)
        local = (xyz @ rotations) / scales[:, None, None]
        unsquashed = (local / squash * scales[:, None, None]) @ rotations.transpose(1, 2)
        return sigma, true(unsquashed)[1]

    return field


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200, help="objects per class and variant")
    parser.add_argument("--thickness", type=float, default=0.05, help="squashed axis' share of its size")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.per_class < 1:
        parser.error("--per-class must be >= 1")
    if not 0 < args.thickness <= 1:
        parser.error("--thickness must be in (0, 1]")
    R = args.resolution
    rgb_judge, depth_judge = load_shapes_judge("rgb", R), load_shapes_judge("depth", R)
    renderer = TriplaneRenderer(depth_samples=48, importance_samples=48, near=CAMERA["near"], far=CAMERA["far"],
                                deterministic=True, ray_chunk=1 << 16)
    K = fov_to_intrinsics(CAMERA["fov_deg"])
    variants = [("true shape", None, False)] + [
        (f"{kind} along {AXES[a]}", a, painted) for painted, kind in ((False, "flat solid"), (True, "painted card"))
        for a in range(3)]
    print(f"{'class':<9} {'variant':<22} rgb right | depth right | depth: flat card")
    for kind, name in enumerate(CLASS_NAMES):
        for label, axis, painted in variants:
            g = torch.Generator().manual_seed(args.seed + kind)  # the same objects and cameras in every variant
            n = args.per_class
            cams = sample_sphere_poses(n, CAMERA["radius"], generator=g)[:, None]
            obj = random_objects(n, g)
            shape = (kind, obj["rotations"], obj["scales"], obj["albedo"])
            if axis is None:
                field = make_field(*shape)
            else:
                squash = torch.ones(3)
                squash[axis] = args.thickness
                field = flat_field(*shape, squash, painted)
            with torch.no_grad():
                out = renderer.render_field(field, cams, K, R, batch=n)
                opacity = out["opacity"][:, 0]
                pixels = (over_background(out["rgb"][:, 0], opacity, obj["background"]) * 255).round().to(torch.uint8)
                rgb_right = (rgb_judge.probabilities(pixels).argmax(1) == kind).float().mean()
                depth_pred = depth_judge.probabilities(depth_nearness(out["depth"][:, 0], opacity)).argmax(1)
            print(f"{name:<9} {label:<22} {rgb_right:9.3f} | {(depth_pred == kind).float().mean():11.3f} | "
                  f"{(depth_pred == FLAT_CARD).float().mean():16.3f}", flush=True)


if __name__ == "__main__":
    main()
