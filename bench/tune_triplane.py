"""Sweep launch configurations of the fused triplane kernels (GPU only).

The first H100 run put the fused decode's backward at about 12.7 ms for 3.15 M points,
5x over its SASS issue model. Its accumulators (decoder weight gradients kept in registers
across a program's blocks) take 232-242 registers, so an SM holds 8 warps. This sweep
times ``triplane_mlp_backward`` alone (CUDA events, L2 flushed, median) for

- the launch config: points per block x warps (``BWD_CONFIG``);
- programs per SM (the backward launches a persistent grid; ``BWD_PROGRAMS_PER_SM``);
- with ``--maxnreg``, a register cap per thread (Triton's ``maxnreg`` launch option):
  the backward's 255 registers hold an SM to 8 warps; capped at 128 (spilling the rest to
  local memory) 16 x 8 programs, or 16 x 4 with bf16 dots (54 KB of shared memory each),
  reach 16 warps per SM, which the SASS model prices at 1.2-1.6x the instructions per
  point and the GPU has never timed;
- with ``--prefetch 0 1``, the backward with and without loading the next block's
  coordinates and incoming gradient during the current block (the config's ``prefetch``:
  ncu put 9% of the backward's stall samples on those loads at the top of each block);
- the job: ``all`` (plane and weight gradients, one launch, what the op runs), ``planes``
  (the scatter alone: no accumulators, so more warps per SM) and ``weights`` (the weight
  reductions alone): if the best ``planes`` + best ``weights`` beat the best ``all``, two
  launches are the faster design; ``forward`` times the forward kernel instead (one
  program per block, so programs per SM do not apply: ``FWD_CONFIG``; measured 2.15 ms on
  an H200 against 0.64 ms in the SASS issue model, and never swept before);

for the two point layouts of ``triplane_breakdown.py`` (uniform, camera rays) at its
``eg3d`` size (8 triplanes x 64^2 rays x 96 depths, planes 3 x 32 x 256^2, decoder
32 -> 64 (x3) -> 33), tf32 dots. Configurations that do not fit are skipped. Rows are
written to the JSON as they finish, so a cut-off run keeps what it measured.

Usage: python bench/tune_triplane.py [--precision tf32 bf16] [--jobs all planes weights forward] [--json PATH]
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # bench helpers import by name
from results_io import write_rows  # noqa: E402

BLOCKS = (16, 32, 64)  # points per block of the backward
WARPS = (4, 8)  # warps per program of the backward
FWD_BLOCKS = (32, 64, 128)  # points per program of the forward
FWD_WARPS = (2, 4, 8)  # warps per program of the forward
PROGRAMS_PER_SM = (2, 4, 8, 16)
JOBS = {"all": (True, True), "planes": (True, False), "weights": (False, True)}  # (plane grads, weight grads)
FORWARD = "forward"
LAYOUTS = ("uniform", "rays")


def problem(layout: str, precision: str, n_hidden: int) -> dict:
    """The eg3d-size inputs of ``triplane_breakdown.py`` as the kernel takes them."""
    from triplane_breakdown import C_OUT, HIDDEN, SIZES, ray_points, uniform_points
    from tri3d.models import TriplaneDecoder
    from tri3d.ops import planes_for_decode
    from tri3d.ops.triplane import pack_decoder

    cfg = SIZES["eg3d"]
    g = torch.Generator().manual_seed(0)
    n = cfg["side"] ** 2 * cfg["depths"]
    xyz = uniform_points(cfg["T"], n, g) if layout == "uniform" else ray_points(cfg["T"], cfg["side"], cfg["depths"], g)
    plane_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    planes = torch.randn(cfg["T"], 3, cfg["C"], cfg["res"], cfg["res"], generator=g).to("cuda", plane_dtype)
    torch.manual_seed(0)
    decoder = TriplaneDecoder(cfg["C"], HIDDEN, n_hidden, C_OUT).cuda()
    params, n_hidden, n_out = pack_decoder(decoder.effective_layers())
    params = [p.detach().contiguous() for p in params]
    planes_cl = planes_for_decode(planes, impl="triton").permute(0, 1, 3, 4, 2).contiguous()
    coords = xyz.reshape(-1, 3).cuda().contiguous()
    return dict(planes=planes_cl, coords=coords, weights=tuple(params[:3]), biases=tuple(params[3:]),
                grad_out=torch.randn(coords.shape[0], n_out, device="cuda", generator=torch.Generator("cuda").manual_seed(1)),
                n_hidden=n_hidden, points_per_plane=n)


def time_ms(inp: dict, precision: str, config: dict, programs: int | None, job: str) -> float | None:
    """Median ms of one launch (the backward with its zeroed outputs, or the forward with
    its output), or None if it does not fit."""
    import triton
    from timing import cuda_event_ms
    from tri3d.kernels.triplane_mlp import triplane_mlp_backward, triplane_mlp_forward

    common = dict(n_hidden=inp["n_hidden"], points_per_plane=inp["points_per_plane"], box_warp=1.0,
                  eg3d_axes=False, precision=precision, config=config)

    def step() -> None:
        if job == FORWARD:
            triplane_mlp_forward(inp["planes"], inp["coords"], None, inp["weights"], inp["biases"],
                                 n_out=inp["grad_out"].shape[1], **common)
        else:
            plane_grads, weight_grads = JOBS[job]
            triplane_mlp_backward(inp["planes"], inp["coords"], None, inp["weights"], inp["biases"], inp["grad_out"],
                                  plane_grads=plane_grads, weight_grads=weight_grads, programs=programs, **common)

    try:
        return statistics.median(cuda_event_ms(step, rounds=5, warmup=1))
    except (triton.runtime.errors.OutOfResources, RuntimeError) as err:
        print(f"  skipped {config} {job}: {type(err).__name__}: {str(err)[:200]}", flush=True)
        return None


def register_cap(text: str) -> int:
    """``--maxnreg`` value: 0 (no cap) or 32..255 registers per thread."""
    value = int(text)
    if value != 0 and not 32 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be 0 (no cap) or 32..255 registers, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", nargs="+", default=["tf32"], choices=["tf32", "bf16"],
                        help="dot operands (bf16 also stores the planes in bf16); default: tf32")
    parser.add_argument("--hidden", nargs="+", type=int, default=[3], choices=[1, 2, 3],
                        help="decoder hidden layers (default: 3)")
    parser.add_argument("--block", nargs="+", type=int, default=None, choices=sorted({*BLOCKS, *FWD_BLOCKS}),
                        help=f"points per block (default: {' '.join(map(str, BLOCKS))}; forward "
                             f"{' '.join(map(str, FWD_BLOCKS))})")
    parser.add_argument("--warps", nargs="+", type=int, default=None, choices=sorted({*WARPS, *FWD_WARPS}),
                        help=f"warps per program (default: {' '.join(map(str, WARPS))}; forward "
                             f"{' '.join(map(str, FWD_WARPS))})")
    parser.add_argument("--programs-per-sm", nargs="+", type=int, default=list(PROGRAMS_PER_SM),
                        choices=range(1, 65), metavar="N", help="persistent programs per SM, 1..64 (default: 2 4 8 16)")
    parser.add_argument("--maxnreg", nargs="+", type=register_cap, default=[0], metavar="N",
                        help="register caps per thread to sweep, 0 = none (default: 0)")
    parser.add_argument("--prefetch", nargs="+", type=int, default=[0], choices=[0, 1],
                        help="backward: 1 loads the next block's coordinates and incoming gradient during "
                             "this block (default: 0)")
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=[*JOBS, FORWARD],
                        help="backward jobs to time, or the forward (default: all planes weights)")
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS,
                        help="point layouts (default: uniform rays)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here (rewritten after each row)")
    args = parser.parse_args(argv)

    def configs(job: str) -> list[dict]:
        blocks = args.block or (FWD_BLOCKS if job == FORWARD else BLOCKS)
        warps = args.warps or (FWD_WARPS if job == FORWARD else WARPS)
        stages = {} if job == FORWARD else dict(num_stages=1)  # the forward keeps Triton's default, as FWD_CONFIG
        prefetch = [0] if job == FORWARD else args.prefetch
        return [dict(block=b, num_warps=w, **stages, **({"maxnreg": r} if r else {}),
                     **({"prefetch": True} if f else {}))
                for b, w, r, f in itertools.product(blocks, warps, args.maxnreg, prefetch)]
    if not torch.cuda.is_available():
        print("tune_triplane needs a CUDA GPU", file=sys.stderr)
        return 2
    from tri3d.kernels.triplane_mlp import BWD_PROGRAMS_PER_SM, bwd_config, config_arch, fwd_config

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    arch = config_arch(torch.device("cuda"))
    print(f"device: {torch.cuda.get_device_name()}; defaults: "
          + ", ".join(f"{n} hidden {bwd_config(n, arch)}" for n in args.hidden)
          + f", {BWD_PROGRAMS_PER_SM} programs per SM; forward "
          + ", ".join(f"{p} {fwd_config(p, arch)}" for p in args.precision) + "\n")

    def shape(config: dict) -> str:
        cap = f" (maxnreg {config['maxnreg']})" if "maxnreg" in config else ""
        prefetch = " prefetch" if config.get("prefetch") else ""
        return f"{config['block']} x {config['num_warps']}{cap}{prefetch}"

    print("| precision | hidden | layout | job | block x warps | "
          + " | ".join(f"{p}/SM ms" for p in args.programs_per_sm) + " |")
    print("|---|---:|---|---|---|" + "---:|" * len(args.programs_per_sm))
    rows = []
    for precision, n_hidden, layout in itertools.product(args.precision, args.hidden, args.layouts):
        inp = problem(layout, precision, n_hidden)
        for job, config in [(job, config) for job in args.jobs for config in configs(job)]:
            # The forward launches one program per block: programs per SM do not apply.
            per_sm = [None] if job == FORWARD else args.programs_per_sm
            ms = [time_ms(inp, precision, config, None if p is None else p * sms, job) for p in per_sm]
            rows.append(dict(precision=precision, hidden=n_hidden, layout=layout, job=job, config=config,
                             programs_per_sm=per_sm, ms=ms))
            padded = ms + [None] * (len(args.programs_per_sm) - len(ms))
            cells = " | ".join("-" if t is None else f"{t:.3f}" for t in padded)
            print(f"| {precision} | {n_hidden} | {layout} | {job} | {shape(config)} | "
                  f"{cells} |", flush=True)
            if args.json:
                write_rows(args.json, rows)
        del inp
        torch.cuda.empty_cache()
    print()
    for precision, n_hidden, layout in itertools.product(args.precision, args.hidden, args.layouts):
        best = {}
        for job in args.jobs:
            timed = [(t, r["config"], p) for r in rows
                     if (r["precision"], r["hidden"], r["layout"], r["job"]) == (precision, n_hidden, layout, job)
                     for t, p in zip(r["ms"], r["programs_per_sm"]) if t is not None]
            if timed:
                best[job] = min(timed, key=lambda x: x[0])
        line = f"{precision} {n_hidden} hidden {layout}: " + "; ".join(
            f"best {job} {t:.3f} ms ({shape(c)}" + (f", {p}/SM)" if p else ")")
            for job, (t, c, p) in best.items())
        if {"planes", "weights"} <= set(best):
            line += f"; planes + weights {best['planes'][0] + best['weights'][0]:.3f} ms"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
