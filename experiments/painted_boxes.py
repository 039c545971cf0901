"""Does a discriminator tell a box from a sphere painted like a box?

The GANs draw boxes as spheres (docs/learning.md). A sphere can carry a box's shading:
colour each surface point as the box's face it projects onto from the centre would be
shaded (flat faces, sharp edges between them), and from every side it shows what a box
shows inside its outline; only the outline (a disc, not a hexagon or square) and the
depth differ. This renders, from the same whole-sphere cameras, rotations, albedos and
backgrounds as the shapes set draws them, ``--per-class`` objects each of: true boxes,
true spheres, and spheres painted like a box (the sphere class's radius 0.3, or
``--radius``), and reports which class the rgb judge, the depth judge and (with
``--ckpt``, repeatable) a run's discriminator give each (D: the label under which its
projection scores the image highest), with D's mean score under the label "box" minus
that under "sphere" (what G's class loss between the two reads). Where
D calls the painted spheres boxes as often as true boxes, D reads a box's shading, not
its outline, and a G that paints spheres meets D's box.

    python experiments/painted_boxes.py --per-class 200 --ckpt runs/00000-tiny
"""
from __future__ import annotations

import argparse

import torch

from tri3d.data.shapes import CAMERA, make_field, over_background, random_objects
from tri3d.export.generate import load_generator
from tri3d.metrics.shapes_judges import FLAT_CARD, depth_nearness, load_shapes_judge
from tri3d.models import Discriminator
from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, sample_sphere_poses
from tri3d.runs import checkpoint

SPHERE, BOX = 0, 1
INSIDE_THE_BOX = 0.4  # shrinks a sphere of radius <= 0.5 to inside the unit box (half-size 0.22)


def painted_sphere_field(rotations: torch.Tensor,  # [B, 3, 3] object -> world
                         scales: torch.Tensor,  # [B]
                         albedo: torch.Tensor,  # [B, 3]
                         radius: float):
    """xyz [B, N, 3] -> (sigma_raw, rgb): a sphere of ``radius`` (object units) whose colour
    at each point is the set's shading of the box face that point projects onto from the
    centre. The box's own field gives it: shrunk toward the centre (radius <= 0.5 becomes
    <= 0.2, inside the box of half-size 0.22), a point lies where the box's distance
    gradient is the normal of the face of its largest object coordinate."""
    sphere = make_field(SPHERE, rotations, scales, albedo, sdf=lambda xyz: xyz.norm(dim=-1) - radius * scales[:, None])
    box = make_field(BOX, rotations, scales, albedo)

    def field(xyz: torch.Tensor):
        return sphere(xyz)[0], box(xyz * INSIDE_THE_BOX)[1]

    return field


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200, help="objects per variant")
    parser.add_argument("--radius", type=float, default=0.3, help="the painted sphere's radius (object units)")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--ckpt", action="append", default=[], help="run folder or snapshot whose D to ask (repeatable)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.per_class < 1:
        parser.error("--per-class must be >= 1")
    if not 0 < args.radius <= 0.5:
        parser.error("--radius must lie in (0, 0.5]")
    R = args.resolution
    renderer = TriplaneRenderer(depth_samples=48, importance_samples=48, near=CAMERA["near"], far=CAMERA["far"],
                                deterministic=True, ray_chunk=1 << 16)
    K = fov_to_intrinsics(CAMERA["fov_deg"])
    g = torch.Generator().manual_seed(args.seed)  # one draw of objects and cameras for every variant
    n = args.per_class
    cams = sample_sphere_poses(n, CAMERA["radius"], generator=g)[:, None]
    obj = random_objects(n, g)
    shape = (obj["rotations"], obj["scales"], obj["albedo"])
    variants = {"true box": make_field(BOX, *shape), "true sphere": make_field(SPHERE, *shape),
                "sphere painted as a box": painted_sphere_field(*shape, args.radius)}
    images, depths = {}, {}  # per variant: uint8 images [n, 3, R, R] and depth nearness [n, 1, R, R]
    with torch.no_grad():
        for name, field in variants.items():
            out = renderer.render_field(field, cams, K, R, batch=n)
            opacity = out["opacity"][:, 0]
            images[name] = (over_background(out["rgb"][:, 0], opacity, obj["background"]) * 255).round().to(torch.uint8)
            depths[name] = depth_nearness(out["depth"][:, 0], opacity)
    rgb_judge, depth_judge = load_shapes_judge("rgb", R), load_shapes_judge("depth", R)
    with torch.no_grad():  # per asker: (name, {variant: predicted class [n]}, {variant: D's box - sphere score [n]} or None)
        askers = [("rgb judge", {v: rgb_judge.probabilities(images[v]).argmax(1) for v in variants}, None),
                  ("depth judge", {v: depth_judge.probabilities(depths[v]).argmax(1) for v in variants}, None)]
        for ckpt in args.ckpt:
            _, cfg, snapshot = load_generator(ckpt)
            D = Discriminator(cfg.D).eval()
            checkpoint.load_weights(snapshot, "D", D)
            scores = {v: D(images[v].float() / 127.5 - 1, None, None, all_classes=True) for v in variants}
            askers.append((f"D of {ckpt}", {v: s.argmax(1) for v, s in scores.items()},
                           {v: s[:, BOX] - s[:, SPHERE] for v, s in scores.items()}))
    print(f"{n} objects per variant: the share each asker calls a sphere / a box (the depth judge also: a flat card)")
    for variant in variants:
        print(f"== {variant}")
        for name, predicted, box_margin in askers:
            p = predicted[variant]
            row = f"  {name:<40} sphere {(p == SPHERE).float().mean():.2f}  box {(p == BOX).float().mean():.2f}"
            if name == "depth judge":
                row += f"  flat card {(p == FLAT_CARD).float().mean():.2f}"
            if box_margin is not None:
                row += f"  mean score as a box - as a sphere {box_margin[variant].mean():+.2f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
