"""SASS cost report of the fused triplane kernels and the CUDA compositor as the
``imagenet`` render launches them.

Usage: python bench/sass_report.py [--precision tf32 bf16] [--hidden 3] [--kernels triplane compositor] [--json PATH]

Runs on a machine without a GPU: compiles for sm_90 the exact specializations Triton's JIT
builds for one decode call of the ``imagenet`` render (batch 8, 64x64 rays x 3 views, 48
samples, planes 3 x 32 x 256 x 256, decoder 32 -> 64 -> 64 -> 64 -> 33; a render makes two
such calls, coarse and fine), reads the SASS and prints, per kernel: registers, stack,
dynamic shared memory, resident warps per SM, and warp-instructions per point by class
(``tri3d/kernels/sass_cost.py``). The summary sets the issue-bound time of a render's
forward + backward beside its DRAM and tensor floors on an H100 SXM.

The compositor (``csrc/kernels.cuh``, compiled with nvcc when it is installed) is counted
per sample of the render's final composite (98,304 rays x 96 samples x 32 channels, fp32,
one warp per ray): its loops run S - 1 times (samples; the forward-order ones as chunks of
32), or C / 32 times (a lane's channels), and the backward's version for C < 2 (terms
recomputed, not parked) runs 0 times.
These are model estimates, not measurements.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

CALLS_PER_RENDER = 2  # coarse + fine decode
SHOWN = ("mma", "mufu", "global load", "local", "shared", "reduction", "barrier", "alu")
# The imagenet render's final composite: batch 8, 64x64 rays x 3 views, 48 + 48 samples.
COMPOSITE_CALL = dict(rays=8 * 64 * 64 * 3, samples=96, channels=32)


REGISTER_CHANNELS = 32  # csrc/kernels.cuh's kRegisterChannels: channels in registers up to this C


def compositor_trips(kernel: str, loops: list[dict], samples: int, channels: int) -> list[float]:
    """Trip counts of the compositor's loops (listing order, ``sass_cost.loop_counts``), one
    warp per ray with 32 lanes splitting the channels; the forward-order sample loops walk
    chunks of 32 intervals (``kChunk``), the lanes computing a chunk's terms once at its
    start. Each kernel holds one version of its loops per case, chosen per launch by C;
    the versions this C does not launch count 0. Raises when the listing's loops are not the
    ones this model describes (after a change to ``csrc/composite.h`` or ``kernels.cuh``)."""
    K, ch = samples - 1, -(-channels // 32)
    chunks = -(-K // 32)
    per_chunk = K / chunks  # average intervals per chunk (the last one is shorter)
    in_registers = channels <= REGISTER_CHANNELS
    if kernel.startswith("composite_forward"):
        # Channels in memory (C > 32): zero the output; per interval of a chunk: its row; the
        # chunks; the last row. Channels in registers: per interval of a chunk, the chunks.
        memory, registers = [ch, ch, per_chunk, chunks, ch], [per_chunk, chunks]
        expected = [0] * len(memory) + registers if in_registers else memory + [0] * len(registers)
        if len(loops) == len(expected) and loops[len(memory)]["global store"] != 1:
            raise ValueError(f"{kernel}: the register version's interval loop stores more than its weight")
    else:
        # Parked terms with channels in memory (C > 32): the forward recompute (intervals of
        # a chunk, the chunks), the last row's dot, per interval of the reverse scan: the
        # row's dot and gradient write, the reverse scan, the first row. Parked terms with
        # channels in registers (2 <= C <= 32): the forward recompute, the reverse scan.
        # Terms recomputed (C < 2): the same three loops.
        memory = [per_chunk, chunks, ch, ch, ch, K, ch]
        registers = [per_chunk, chunks, K]
        versions = [memory, registers, registers]
        chosen = 2 if channels < 2 else 1 if in_registers else 0
        expected = [t for v, trips in enumerate(versions) for t in (trips if v == chosen else [0] * len(trips))]
        scans = (5, 9, 12)  # each version's reverse scan: parked ones issue no MUFU
        if len(loops) == len(expected) and [loops[i]["mufu"] > 0 for i in scans] != [False, False, True]:
            raise ValueError(f"{kernel}: the parked versions' reverse scans are not the loops without MUFU")
    if len(loops) != len(expected):
        raise ValueError(f"{kernel}: {len(loops)} loops (sizes {[r['total'] for r in loops]}), the model has "
                         f"{len(expected)}: update compositor_trips")
    return expected


def compositor_rows() -> list[dict]:
    """Per-sample warp-instructions of the compositor's fp32 kernels and the issue-bound
    time of one imagenet composite beside its DRAM floor; [] without nvcc."""
    from tri3d.kernels import sass_cost
    from tri3d.kernels.aot import cuobjdump_path

    from roofline import composite_dram_bytes

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        print("compositor: nvcc not found, skipped")
        return []
    spec = importlib.util.spec_from_file_location("nvcc_report", Path(__file__).parents[1] / "csrc" / "nvcc_report.py")
    nvcc_report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nvcc_report)
    listings = nvcc_report.kernel_sass(nvcc, str(cuobjdump_path()), 90)
    rays, S, C = COMPOSITE_CALL["rays"], COMPOSITE_CALL["samples"], COMPOSITE_CALL["channels"]
    fwd_bytes = composite_dram_bytes(rays, S, C, backward=False)
    dram = {"forward": fwd_bytes, "backward": composite_dram_bytes(rays, S, C, backward=True) - fwd_bytes}
    rows = []
    for phase in ("forward", "backward"):
        kernel = f"composite_{phase}_kernel<float>"
        sass = listings[kernel]
        trips = compositor_trips(kernel, sass_cost.loop_counts(sass), S, C)
        cost = sass_cost.per_item(sass, warps=1, items=S, trips=trips)
        issue_ms = 1e3 * sass_cost.issue_bound_seconds(cost["total"] * rays * S)
        dram_ms = 1e3 * dram[phase] / sass_cost.H100["dram_bytes_per_s"]
        rows.append(dict(name=kernel, **cost, issue_ms=issue_ms, dram_ms=dram_ms))
        print(f"{kernel:<34} per sample: " + " ".join(f"{k} {cost[k]:.1f}" for k in SHOWN + ("global store",))
              + f" | total {cost['total']:.0f} | {rays * S / 1e6:.2f} M samples: issue-bound {issue_ms:.2f} ms / "
              f"DRAM floor {dram_ms:.2f} ms", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", nargs="+", default=["tf32", "bf16"], choices=["tf32", "bf16", "ieee"])
    parser.add_argument("--hidden", type=int, nargs="+", default=[3], choices=[1, 2, 3], help="hidden layers")
    parser.add_argument("--kernels", nargs="+", default=["triplane", "compositor"], choices=["triplane", "compositor"])
    parser.add_argument("--bwd-block", type=int, default=None, choices=[16, 32, 64],
                        help="points per block of the backward (default: BWD_CONFIG's for sm_90)")
    parser.add_argument("--bwd-warps", type=int, default=None, choices=[2, 4, 8],
                        help="warps per backward program (default: BWD_CONFIG's for sm_90)")
    parser.add_argument("--maxnreg", type=int, default=None, choices=range(32, 256), metavar="N",
                        help="cap the backward's registers per thread at N, 32..255 (default: no cap)")
    parser.add_argument("--prefetch", type=int, default=None, choices=[0, 1],
                        help="1: the backward loads the next block's inputs during this one (default: BWD_CONFIG's)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    os.environ.pop("TRITON_INTERPRET", None)
    from tri3d.kernels import sass_cost, triplane_mlp
    from tri3d.kernels.aot import compile_with_sass

    from roofline import triplane_decode_dram_bytes

    call = triplane_mlp.IMAGENET_CALL
    gpu = sass_cost.H100
    rows = []
    for n_hidden in args.hidden if "triplane" in args.kernels else ():
        for precision in args.precision:
            plane_dtype = "bf16" if precision == "bf16" else "fp32"
            totals = {"fwd": 0.0, "bwd": 0.0}
            flops = {"fwd": 0.0, "bwd": 0.0}
            bwd = None  # BWD_CONFIG per architecture, unless a flag overrides a field of sm_90's
            overrides = dict(block=args.bwd_block, num_warps=args.bwd_warps, maxnreg=args.maxnreg,
                             prefetch=None if args.prefetch is None else bool(args.prefetch))
            if any(v is not None for v in overrides.values()):
                bwd = dict(triplane_mlp.bwd_config(n_hidden, 90))
                bwd.update({k: v for k, v in overrides.items() if v is not None})
                print(f"backward launch config: {bwd}", flush=True)
            for spec in triplane_mlp.launch_specs(**call, n_hidden=n_hidden, precision=precision,
                                                  plane_dtype=plane_dtype, bwd=bwd):
                if 90 not in spec.archs:
                    continue
                report, sass = compile_with_sass(spec, 90)
                block = spec.constexprs["BLOCK"]
                per_program = spec.scalar_values.get("blocks_per_program", 1)  # 1 is a constexpr
                cost = sass_cost.per_point(sass, num_warps=spec.num_warps, points_per_block=block,
                                           blocks_per_program=per_program)
                warps = sass_cost.warps_per_sm(report.registers, report.dynamic_shared_bytes, spec.num_warps)
                phase = "fwd" if spec.name.startswith("fwd") else "bwd"
                totals[phase] += cost["total"]
                flops[phase] += cost["mma_flops"]
                row = dict(name=spec.name, registers=report.registers, stack=report.stack_bytes,
                           shared_bytes=report.dynamic_shared_bytes, warps_per_sm=warps, **cost)
                rows.append(row)
                print(f"{spec.name:<34} REG {report.registers:>3} STACK {report.stack_bytes:>3} "
                      f"SHARED {report.dynamic_shared_bytes:>6} warps/SM {warps:>2} | per point: "
                      + " ".join(f"{k} {cost[k]:.0f}" for k in SHOWN) + f" | total {cost['total']:.0f}", flush=True)
            points = CALLS_PER_RENDER * call["points"]
            sizes = dict(points=call["points"], triplanes=call["points"] // call["points_per_plane"], H=call["H"],
                         W=call["W"], C=call["C"], n_out=call["n_out"], plane_elem=2 if plane_dtype == "bf16" else 4)
            fwd_bytes = triplane_decode_dram_bytes(**sizes, backward=False)
            dram = {"fwd": fwd_bytes, "bwd": triplane_decode_dram_bytes(**sizes, backward=True) - fwd_bytes}
            peak = gpu["tensor_flops"]["tf32" if precision == "ieee" else precision]
            summary = dict(name=f"render nh{n_hidden} dot={precision}", fwd_per_point=totals["fwd"],
                           bwd_per_point=totals["bwd"])
            for phase in ("fwd", "bwd"):
                summary[f"{phase}_issue_ms"] = 1e3 * sass_cost.issue_bound_seconds(totals[phase] * points)
                summary[f"{phase}_dram_ms"] = 1e3 * CALLS_PER_RENDER * dram[phase] / gpu["dram_bytes_per_s"]
                summary[f"{phase}_tensor_ms"] = 1e3 * flops[phase] * points / peak
            rows.append(summary)
            print(f"  render (2 calls, {points / 1e6:.2f} M points), fwd + bwd {totals['fwd'] + totals['bwd']:.0f} "
                  f"warp-instructions per point: " + ", ".join(
                      f"{phase} issue-bound {summary[f'{phase}_issue_ms']:.2f} ms / DRAM floor "
                      f"{summary[f'{phase}_dram_ms']:.2f} ms / tensor floor {summary[f'{phase}_tensor_ms']:.2f} ms"
                      for phase in ("fwd", "bwd")), flush=True)
    if "compositor" in args.kernels:
        rows += compositor_rows()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
