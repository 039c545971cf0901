"""Does a run's discriminator read who else is in its minibatch-std group?

D's minibatch-std layer appends the feature spread of each group of consecutive samples,
so D can score a view by how different its group-mates are. This scores the same images
grouped in different ways with the run's D (each view under its own label):

- generated objects, two views each, grouped two objects x two views (how the fakes went
  to D before views were ordered view-major) and four objects x one view (now);
- generated objects with one view repeated (two objects, each twice, per group);
- real images, four different ones per group, and two real images each twice per group.

A D that ignores the group scores each arrangement of the same images alike; a D that
scores a group holding an object twice lower is rewarding G for views that disagree.

    python experiments/group_diversity.py --ckpt runs/00000-tiny --objects 256
"""
from __future__ import annotations

import argparse

import torch

from tri3d.export.generate import load_generator
from tri3d.models import Discriminator
from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses
from tri3d.runs import checkpoint
from tri3d.train.loss import views_to_batch
from tri3d.train.run_state import load_dataset


def own_label_scores(D: Discriminator,
                     images: torch.Tensor,  # [N, 3, H, W], N a multiple of D's group size
                     labels: torch.Tensor,  # [N]
                     ) -> torch.Tensor:  # [N]
    """D's logit of every image under its own label, D's groups being consecutive images."""
    step = D.mbstd_group * 4
    return torch.cat([D(images[i:i + step], None, None, all_classes=True).gather(1, labels[i:i + step, None])[:, 0]
                      for i in range(0, images.shape[0], step)])


def twice_each(x: torch.Tensor) -> torch.Tensor:  # [N, ...] -> [N, ...]: the even entries, each twice in a row
    return x[0::2].repeat_interleave(2, dim=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="run folder or snapshot")
    parser.add_argument("--objects", type=int, default=256, help="generated objects (and real images), a multiple of 4")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.objects < 4 or args.objects % 4:
        parser.error(f"--objects must be a positive multiple of 4, got {args.objects}")
    G, cfg, snapshot = load_generator(args.ckpt)
    if G.config.num_classes == 0 or cfg.D.dual:
        parser.error(f"--ckpt {args.ckpt}: needs a class-conditional run with a single-image D")
    D = Discriminator(cfg.D).eval().requires_grad_(False)
    checkpoint.load_weights(snapshot, "D", D)
    if D.mbstd_group != 4:
        parser.error(f"--ckpt {args.ckpt}: D's minibatch-std group is {D.mbstd_group}; this reads groups of 4")
    g = torch.Generator().manual_seed(args.seed)
    n = args.objects
    z = torch.randn(n, G.config.z_dim, generator=g)
    c = torch.randint(G.config.num_classes, (n,), generator=g)
    cams = sample_multiview_poses(n, 2, cfg.camera_radius, cfg.min_view_angle_deg, cfg.view_perturb_deg, generator=g)
    dataset = load_dataset(cfg)
    pick = torch.randperm(len(dataset), generator=g)[:n]
    real = torch.stack([torch.as_tensor(dataset[int(i)][0]) for i in pick]).float() / 127.5 - 1
    real_c = dataset.labels[pick]
    with torch.no_grad():
        fake = G(z, c, cams, fov_to_intrinsics(cfg.fov_deg))["image"]  # [n, 2, 3, H, W]
        rows = {
            "fakes, 2 objects x 2 views per group": own_label_scores(D, fake.flatten(0, 1), c.repeat_interleave(2)),
            "fakes, 4 objects x 1 view per group": own_label_scores(D, views_to_batch(fake), c.repeat(2)),
            "fakes, 2 objects x 1 view twice per group": own_label_scores(D, twice_each(fake[:, 0]), twice_each(c)),
            "reals, 4 images per group": own_label_scores(D, real, real_c),
            "reals, 2 images twice per group": own_label_scores(D, twice_each(real), twice_each(real_c)),
        }
    print(f"snapshot {snapshot}: D's mean logit under each image's own label ({n} objects)")
    for name, scores in rows.items():
        print(f"  {name:45s} {scores.mean().item():+.3f}")


if __name__ == "__main__":
    main()
