"""Can a trained generator draw each class's true shape at all? A capacity check for the
boxes that no run draws right from depth.

For each class, one true object of the shapes set (its analytic field, rendered as the set
renders it, over one background colour) is seen from ``--views`` whole-sphere cameras; the
generator is fitted to those views with the GAN's own signal, rgb only: first ``w`` (from
the class-average ``w``, generator frozen), then the synthesis network, decoder and
background with ``w`` fixed (pivotal tuning, here on many views instead of one). The fit
is then rendered from ``--novel`` other whole-sphere cameras and its depth scored by the
depth judge (right class, flat cards), as ``tri3d metrics`` scores a generator's views;
the true object's own novel views are scored beside it.

    python experiments/multiview_fit.py --ckpt RUN [--classes 0 1 2 3 4] [--views 24]
"""
from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F

from tri3d.data.shapes import CAMERA, CLASS_NAMES, make_field, over_background, random_objects
from tri3d.export.generate import load_generator
from tri3d.invert.pti import class_average_w
from tri3d.metrics.shapes_judges import FLAT_CARD, depth_nearness, load_shapes_judge
from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, sample_sphere_poses


def true_views(kind: int, cams: torch.Tensor,  # [V, 4, 4]
               resolution: int, g: torch.Generator) -> dict:
    """One true object of ``kind`` from every camera: ``image`` [V, 3, r, r] in [-1, 1]
    over one background colour (as the set composites), ``depth`` and ``opacity`` [V, 1, r, r]."""
    renderer = TriplaneRenderer(depth_samples=48, importance_samples=48, near=CAMERA["near"], far=CAMERA["far"],
                                deterministic=True, ray_chunk=1 << 16)
    obj = random_objects(1, g)
    with torch.no_grad():
        out = renderer.render_field(make_field(kind, obj["rotations"], obj["scales"], obj["albedo"]), cams[None],
                                    fov_to_intrinsics(CAMERA["fov_deg"]), resolution, batch=1)
    opacity = out["opacity"][0]
    image = over_background(out["rgb"][0], opacity, obj["background"]) * 2 - 1
    return {"image": image, "depth": out["depth"][0], "opacity": opacity}


def render(G, ws: torch.Tensor, cams: torch.Tensor, K: torch.Tensor) -> dict:  # cams [V, 4, 4]
    with G.deterministic_rendering():
        return G.synthesize(ws, cams[None], K, noise_mode="const")


def judge_depth(judge, depth: torch.Tensor, opacity: torch.Tensor, kind: int) -> tuple[float, float]:
    """Share of views the depth judge calls ``kind`` and share it calls flat cards."""
    predicted = judge.probabilities(depth_nearness(depth, opacity)).argmax(dim=1)
    return (predicted == kind).float().mean().item(), (predicted == FLAT_CARD).float().mean().item()


def fit(G, kind: int, target: torch.Tensor, cams: torch.Tensor, K: torch.Tensor, w_steps: int, tune_steps: int,
        lr_tune: float):
    """``w`` then the generator (mapping frozen) fitted to ``target`` [V, 3, r, r] by pixel MSE."""
    G = copy.deepcopy(G).eval()
    G.requires_grad_(False)
    ws_init = class_average_w(G, kind, 256, 0)
    w = ws_init[:, :1].clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=0.01)
    for _ in range(w_steps):
        loss = F.mse_loss(render(G, w.expand(-1, ws_init.shape[1], -1), cams, K)["image"][0], target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    ws = w.detach().expand(-1, ws_init.shape[1], -1)
    G.train().requires_grad_(True)
    G.mapping.requires_grad_(False)
    opt = torch.optim.Adam([p for p in G.parameters() if p.requires_grad], lr=lr_tune)
    for _ in range(tune_steps):
        loss = F.mse_loss(render(G, ws, cams, K)["image"][0], target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return G.eval().requires_grad_(False), ws, loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="run folder or snapshot")
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(len(CLASS_NAMES))))
    parser.add_argument("--views", type=int, default=24, help="training views of the object, >= 1")
    parser.add_argument("--novel", type=int, default=100, help="held-out views scored, >= 1")
    parser.add_argument("--w-steps", type=int, default=100)
    parser.add_argument("--tune-steps", type=int, default=300)
    parser.add_argument("--lr-tune", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0, help="object and cameras")
    args = parser.parse_args()
    for name in ("views", "novel"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    G, cfg, _ = load_generator(args.ckpt)
    res = cfg.G.image_resolution
    K = fov_to_intrinsics(cfg.fov_deg)
    judge = load_shapes_judge("depth", res)
    print("| class | views | fit: training-view pixel MSE | fit: novel views right from depth | fit: flat cards "
          "| true object: right from depth | class-average start: right from depth |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in args.classes:
        g = torch.Generator().manual_seed(args.seed * 100 + kind)
        cams = sample_sphere_poses(args.views + args.novel, CAMERA["radius"], generator=g)
        train_cams, novel_cams = cams[: args.views], cams[args.views:]
        truth = true_views(kind, cams, res, g)
        fitted, ws, mse = fit(G, kind, truth["image"][: args.views], train_cams, K, args.w_steps, args.tune_steps,
                              args.lr_tune)
        with torch.no_grad():
            out = render(fitted, ws, novel_cams, K)
            start = render(G, class_average_w(G, kind, 256, 0), novel_cams, K)
        right, flat = judge_depth(judge, out["depth"][0], out["opacity"][0], kind)
        true_right, _ = judge_depth(judge, truth["depth"][args.views:], truth["opacity"][args.views:], kind)
        start_right, _ = judge_depth(judge, start["depth"][0], start["opacity"][0], kind)
        print(f"| {CLASS_NAMES[kind]} | {args.views} | {mse:.4f} | {right:.2f} | {flat:.2f} | {true_right:.2f} "
              f"| {start_right:.2f} |", flush=True)


if __name__ == "__main__":
    main()
