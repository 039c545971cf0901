"""Where the fused triplane decode's time goes: one script for a GPU lease.

The first H100 run (bench/RESULTS.md, 2026-11-26) measured the fused forward+backward at
14.9 ms for 3.15 M points, of which about 12.7 ms backward, 5x over the backward's SASS
issue-count model. This script separates the candidates, each timed alone with CUDA events
(median; L2 flushed, gradients zeroed before each round):

- ``convert``: ``planes_for_decode`` (the channels-last copy a render makes once);
- ``forward``: the fused forward on converted planes;
- ``fwd+bwd all``: forward + one backward launch producing plane and decoder gradients;
- ``fwd+bwd planes``: the decoder frozen, so the backward skips the weight reductions;
- ``fwd+bwd decoder``: the planes frozen, so the backward skips the plane-gradient scatter
  (the 12 x C fp32 atomics per point);

each for two point layouts: ``uniform`` (the bench suite's random points, atomics spread
over the planes) and ``rays`` (the points of 64 x 64 camera rays x 96 depths per triplane
from whole-sphere poses, ordered ray by ray as the renderer lays them out: neighbouring
points share texels, so their atomics collide). The scatter's cost is roughly
``all - decoder`` and the weight reductions' ``all - planes``.

Run: python bench/triplane_breakdown.py [--size eg3d|small] [--precision tf32 bf16] [--json F]
Without a GPU only ``small`` runs (the interpreter; its times say nothing about a GPU).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are decorated

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench helpers import by name
from results_io import write_rows  # noqa: E402
from timing import cuda_event_ms  # noqa: E402
from tri3d.models import TriplaneDecoder  # noqa: E402
from tri3d.ops import planes_for_decode, triplane_decode  # noqa: E402
from tri3d.render.camera import fov_to_intrinsics, sample_sphere_poses  # noqa: E402
from tri3d.render.rays import pixel_rays  # noqa: E402

CUDA = torch.cuda.is_available()
SIZES = {  # triplanes, rays per side, depths per ray, plane resolution, channels
    "small": dict(T=2, side=8, depths=12, res=32, C=32),
    "eg3d": dict(T=8, side=64, depths=96, res=256, C=32),
}
HIDDEN, N_HIDDEN, C_OUT = 64, 3, 32
NEAR, FAR = 2.25, 3.3  # EG3D's ray bounds for a camera at radius 2.7


def uniform_points(T: int, n: int, generator: torch.Generator) -> torch.Tensor:  # [T, n, 3]
    return torch.rand(T, n, 3, generator=generator) - 0.5


def ray_points(T: int, side: int, depths: int, generator: torch.Generator) -> torch.Tensor:  # [T, side^2 * depths, 3]
    """Points of ``side x side`` pixel rays per triplane from whole-sphere poses at stratified
    depths in [NEAR, FAR], ray by ray (the renderer's order)."""
    cam2world = sample_sphere_poses(T, generator=generator)
    K = fov_to_intrinsics(18.837).expand(T, 3, 3)
    origins, dirs = pixel_rays(cam2world, K, side)  # [T, R, 3] each
    t = NEAR + (FAR - NEAR) * (torch.arange(depths) + torch.rand(T, side * side, depths, generator=generator)) / depths
    return (origins[:, :, None] + dirs[:, :, None] * t[..., None]).reshape(T, -1, 3)


def median_ms(step: Callable[[], object], setup: Callable[[], object], rounds: int) -> float:
    """Median milliseconds of ``step``: CUDA events (L2 flushed, ``setup`` untimed) on a GPU,
    the wall clock on the CPU."""
    if CUDA:
        return statistics.median(cuda_event_ms(step, rounds=rounds, warmup=2, setup=setup))
    times = []
    for _ in range(rounds):
        setup()
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def breakdown(size: str, precision: str, layout: str, rounds: int) -> dict[str, float]:
    """Milliseconds of each stage (module docstring) for one size, precision and layout."""
    cfg = SIZES[size]
    device = "cuda" if CUDA else "cpu"
    g = torch.Generator().manual_seed(0)
    n = cfg["side"] ** 2 * cfg["depths"]
    xyz = uniform_points(cfg["T"], n, g) if layout == "uniform" else ray_points(cfg["T"], cfg["side"], cfg["depths"], g)
    xyz = xyz.to(device)
    plane_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    planes = torch.randn(cfg["T"], 3, cfg["C"], cfg["res"], cfg["res"], generator=g).to(device, plane_dtype)
    torch.manual_seed(0)
    decoder = TriplaneDecoder(cfg["C"], HIDDEN, N_HIDDEN, C_OUT).to(device)
    converted = planes_for_decode(planes, impl="triton")
    cot = None

    def run(planes_grad: bool, decoder_grad: bool, backward: bool) -> Callable[[], None]:
        def step() -> None:
            nonlocal cot
            p = converted.detach().requires_grad_(planes_grad)
            decoder.requires_grad_(decoder_grad)
            sigma, rgb = triplane_decode(p, xyz, decoder, impl="triton", precision=precision)
            if backward:
                if cot is None:
                    cot = (torch.randn_like(sigma), torch.randn_like(rgb))
                torch.autograd.backward((sigma, rgb), cot)

        return step

    def zero_grads() -> None:
        decoder.zero_grad(set_to_none=True)

    stages = {
        "convert": lambda: planes_for_decode(planes, impl="triton"),
        "forward": run(False, False, False),
        "fwd+bwd all": run(True, True, True),
        "fwd+bwd planes": run(True, False, True),
        "fwd+bwd decoder": run(False, True, True),
    }
    out = {}
    for name, step in stages.items():
        step()  # compile / warm up
        out[name] = median_ms(step, zero_grads, rounds)
    out["points"] = cfg["T"] * n
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="eg3d" if CUDA else "small",
                        help="problem size (default: eg3d on a GPU, small without)")
    parser.add_argument("--precision", nargs="+", choices=["tf32", "bf16"], default=["tf32", "bf16"],
                        help="dot operands (bf16 also stores the planes in bf16); default: both")
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds per stage, >= 1 (default 10)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.size == "eg3d" and not CUDA:
        parser.error("--size eg3d needs a GPU (the interpreter would take hours)")
    rows = []
    print(f"device: {torch.cuda.get_device_name() if CUDA else 'cpu (interpreter: times mean nothing)'}\n")
    print("| precision | layout | convert | forward | fwd+bwd all | fwd+bwd planes | fwd+bwd decoder | scatter ~ |"
          " weight reductions ~ |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for precision in args.precision:
        for layout in ("uniform", "rays"):
            ms = breakdown(args.size, precision, layout, args.rounds)
            rows.append(dict(size=args.size, precision=precision, layout=layout, **ms))
            print(f"| {precision} | {layout} | {ms['convert']:.3f} | {ms['forward']:.3f} | {ms['fwd+bwd all']:.3f} "
                  f"| {ms['fwd+bwd planes']:.3f} | {ms['fwd+bwd decoder']:.3f} "
                  f"| {ms['fwd+bwd all'] - ms['fwd+bwd decoder']:.3f} | {ms['fwd+bwd all'] - ms['fwd+bwd planes']:.3f} |")
            if args.json:
                write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
