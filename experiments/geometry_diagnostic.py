"""Where a generator's geometry fails: per-class confusion of the judges, and how empty
the background is.

Renders ``--views`` objects (classes in turn) from whole-sphere poses with the EMA
generator of a run, and prints the depth judge's and the rgb judge's confusion matrices
(rows: the class asked for; the depth judge's last column is "flat card"), the histogram
of per-pixel opacity and the fraction of each class's pixels with opacity > 0.5 beside
the same fraction in the real training set; then the confusion of the run's
discriminator on the judges' held-out real images (the label under which D's projection
scores each image highest: where D cannot tell two classes apart, G gets no signal to).

    python experiments/geometry_diagnostic.py --ckpt runs/00000-tiny --views 200
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from tri3d.data.shapes import shapes_dataset_path
from tri3d.export.generate import load_generator
from tri3d.metrics.evaluate import to_uint8
from tri3d.metrics.shapes_judges import depth_nearness, heldout_images, load_shapes_judge, shapes_ground_truth
from tri3d.models import Discriminator
from tri3d.render.camera import fov_to_intrinsics, sample_sphere_poses
from tri3d.runs import checkpoint
from tri3d.train.reporting import d_class_predictions


def confusion(asked: torch.Tensor, predicted: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    out = torch.zeros(rows, cols, dtype=torch.long)
    out.index_put_((asked, predicted), torch.ones_like(asked), accumulate=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="run folder or snapshot")
    parser.add_argument("--views", type=int, default=200, help="objects rendered, one view each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.views < 1:
        parser.error("--views must be >= 1")
    G, cfg, snapshot = load_generator(args.ckpt)
    K = G.config.num_classes
    if K == 0:
        parser.error(f"--ckpt {args.ckpt}: the generator is not class-conditional")
    g = torch.Generator().manual_seed(args.seed)
    z = torch.randn(args.views, G.config.z_dim, generator=g)
    c = torch.arange(args.views) % K
    cams = sample_sphere_poses(args.views, cfg.camera_radius, generator=g)[:, None]
    with torch.no_grad(), G.deterministic_rendering():
        out = G(z, c, cams, fov_to_intrinsics(cfg.fov_deg), noise_mode="const")
    opacity = out["opacity"][:, 0, 0]
    R = G.config.image_resolution
    depth_judge, rgb_judge = load_shapes_judge("depth", R), load_shapes_judge("rgb", R)
    depth_pred = depth_judge.probabilities(depth_nearness(out["depth"][:, 0], out["opacity"][:, 0])).argmax(1)
    rgb_pred = rgb_judge.probabilities(to_uint8(out["image"][:, 0])).argmax(1)
    print(f"snapshot {snapshot}, {args.views} views")
    print("depth judge confusion (rows: class asked; last column: flat card)\n", confusion(c, depth_pred, K, K + 1))
    print("rgb judge confusion\n", confusion(c, rgb_pred, K, K))
    bins = [0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0001]
    hist = np.histogram(opacity.numpy(), bins=bins)[0] / opacity.numel()
    print("opacity histogram", {f"{a:g}-{b:g}": round(float(h), 3) for a, b, h in zip(bins, bins[1:], hist)})
    real, labels = shapes_ground_truth(shapes_dataset_path(R, cfg.shapes_per_class, seed=0))
    print("pixels with opacity > 0.5 per class, generated:",
          [round(float((opacity[c == k] > 0.5).float().mean()), 3) for k in range(K)])
    print("                                     real:     ",
          [round(float((real[labels == k] > 0).float().mean()), 3) for k in range(K)])
    images, held_labels = heldout_images(R, cfg.metrics_judge)
    D = Discriminator(cfg.D).eval()
    checkpoint.load_weights(snapshot, "D", D)
    d_pred = d_class_predictions(D, images.float() / 127.5 - 1,
                                 cfg.G.neural_rendering_resolution if cfg.D.dual else None)
    print(f"D's class confusion on {len(images)} held-out real images (accuracy "
          f"{float((d_pred == held_labels).float().mean()):.3f})\n", confusion(held_labels, d_pred, K, K))


if __name__ == "__main__":
    main()
