"""Has G painted a wall, and does its D read the wall's colour?

A generator facing a strong discriminator early can fill the frame with an opaque surface
and paint its objects on it (docs/learning.md, "Why the centred D collapses"). For one
snapshot this reports, over ``--n`` objects of G (the training G, not the EMA copy) from
whole-sphere poses, with held-out real images of the same labels:

- coverage: the mean opacity of the views (real shapes cover 0.15-0.23 of an image),
  and the mean and SD over views of the covered pixels' colour per channel;
- D's mean score of the real images and of the fakes under their labels, and of the
  fakes with each one's mean colour replaced by a real image's (how much of D's verdict
  is the colour; a centring D reads the mean colour only at its first FC layer).

    python experiments/wall_probe.py --ckpt runs/00000-tiny/snapshot-00000625
"""
from __future__ import annotations

import argparse

import torch

from tri3d.export.generate import load_generator
from tri3d.metrics.shapes_judges import heldout_images
from tri3d.models import Discriminator
from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses
from tri3d.runs import checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="run folder (newest snapshot) or snapshot folder")
    parser.add_argument("--n", type=int, default=256, help="objects and real images (a multiple of D's mbstd group)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    G, cfg, snap = load_generator(args.ckpt, weights="G")
    if args.n < 1 or args.n % cfg.D.mbstd_group:
        parser.error(f"--n must be a positive multiple of D's minibatch-std group ({cfg.D.mbstd_group})")
    if cfg.G.num_classes == 0 or cfg.G.superresolution:
        parser.error("--ckpt must be a class-conditional run without super-resolution (e.g. tiny)")
    D = Discriminator(cfg.D).eval()
    checkpoint.load_weights(snap, "D", D)
    images, labels = heldout_images(cfg.G.image_resolution, cfg.metrics_judge)
    if len(images) < args.n:
        parser.error(f"--n must be at most {len(images)} (the held-out real images)")
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[:args.n]
    real, c = images[pick].float() / 127.5 - 1, labels[pick]
    g = torch.Generator().manual_seed(args.seed)
    z = torch.randn(args.n, cfg.G.z_dim, generator=g)
    cams = sample_multiview_poses(args.n, 1, cfg.camera_radius, 0.0, 0.0, generator=g)
    with torch.no_grad():
        out = G(z, c, cams, fov_to_intrinsics(cfg.fov_deg), noise_mode="const")
        fake, opacity = out["image"][:, 0], out["opacity"][:, 0]  # [n, 3, R, R], [n, 1, R, R]
        covered = (fake * opacity).sum(dim=(2, 3)) / opacity.sum(dim=(2, 3)).clamp_min(1e-6)  # [n, 3]

        def score(x: torch.Tensor) -> float:
            return D(x, None, None, all_classes=True).gather(1, c[:, None]).mean().item()

        fake_mean, real_mean = fake.mean(dim=(2, 3), keepdim=True), real.mean(dim=(2, 3), keepdim=True)
        print(f"{snap}: {args.n} objects")
        print(f"coverage {opacity.mean():.3f}; covered pixels' colour per channel: mean "
              f"{[round(v, 2) for v in covered.mean(0).tolist()]}, SD {[round(v, 2) for v in covered.std(0).tolist()]}")
        print(f"D's mean score: real {score(real):+.2f}, fake {score(fake):+.2f}, "
              f"fake with a real image's mean colour {score(fake - fake_mean + real_mean):+.2f}")


if __name__ == "__main__":
    main()
