"""Sweep launch configurations of the fused modulated-convolution kernels (GPU only).

For every up=1 layer shape of the `imagenet` preset (batch 8) and each of the forward,
input-gradient and weight-gradient kernels, times a grid of block sizes and warp counts
with ``triton.testing.do_bench`` and prints the default's time beside the fastest
configuration (a gradient kernel is timed through the whole backward, the other
kernels at their defaults). Configurations that do not fit the device (shared memory, registers) are
skipped. Use the result to change ``FWD_CONFIG`` / ``DGRAD_CONFIG`` / ``WGRAD_CONFIG`` in
``kernels/modconv.py`` (then re-run the AOT compile check and the bench).

Rows are printed, and written to ``--json``, as each kernel's sweep finishes, so a run
cut off by its time budget keeps them; ``--kernels`` and ``--layers`` narrow the sweep.

Usage: python bench/tune_modconv.py [--dtype bf16 fp32] [--kernels fwd dgrad wgrad] [--layers N] [--json PATH]
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # bench helpers import by name
from results_io import write_rows  # noqa: E402

FWD_GRID = [dict(block_m=m, block_o=o, block_i=i, num_warps=w)
            for m, o, i, w in itertools.product((64, 128), (64, 128), (32, 64), (4, 8))]
DGRAD_GRID = [dict(block_m=m, block_i=i, block_o=o, num_warps=w)
              for m, i, o, w in itertools.product((64, 128), (64, 128), (32, 64), (4, 8))]
WGRAD_GRID = [dict(block_m=m, block_o=o, block_i=i, num_warps=w)
              for m, o, i, w in itertools.product((32, 64), (64, 128), (64, 128), (4, 8))]


def layer_inputs(kind: str, I: int, O: int, k: int, R: int, dtype: torch.dtype, batch: int = 8) -> dict:
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(batch, R, R, I, device="cuda", generator=g).to(dtype)
    y = torch.randn(batch, R, R, O, device="cuda", generator=g).to(dtype)
    return dict(
        x=x, y=y, grad_y=torch.randn_like(y),
        weight=torch.randn(k * k, I, O, device="cuda", generator=g),
        styles=torch.rand(batch, I, device="cuda", generator=g) + 0.5,
        demod=torch.rand(batch, O, device="cuda", generator=g) + 0.5 if kind == "conv" else None,
        bias=torch.zeros(O, device="cuda"),
        noise=torch.randn(batch, R, R, device="cuda", generator=g) if kind == "conv" else None,
        noise_strength=torch.full((1,), 0.1, device="cuda"),
        options=dict(kernel_size=k, padding=k // 2, alpha=0.2 if kind == "conv" else 1.0,
                     gain=math.sqrt(2) if kind == "conv" else 1.0, clamp=256.0,
                     precision="bf16" if dtype == torch.bfloat16 else "tf32"),
    )


def time_ms(fn) -> float | None:
    import triton
    import triton.testing

    try:
        fn()
        return triton.testing.do_bench(fn, warmup=10, rep=50)
    except (triton.runtime.errors.OutOfResources, RuntimeError):
        return None


KERNELS = ("fwd", "dgrad", "wgrad")


def sweep(inp: dict, kernels: list[str]):
    """Yields ``(kernel, result)`` for each of ``kernels`` as its grid is timed."""
    from tri3d.kernels import modconv as mc

    o = inp["options"]
    fwd_args = (inp["x"], inp["weight"], inp["styles"], inp["demod"], inp["bias"], inp["noise"],
                inp["noise_strength"])
    bwd_args = (inp["grad_y"], inp["y"], inp["x"], inp["weight"], inp["styles"], inp["demod"], inp["noise"])
    runs = {
        "fwd": (mc.FWD_CONFIG, FWD_GRID, lambda c: mc.modconv_forward(*fwd_args, **o, config=c)),
        "dgrad": (mc.DGRAD_CONFIG, DGRAD_GRID,
                  lambda c: mc.modconv_backward(*bwd_args, **o, configs={"dgrad": c, "wgrad": mc.WGRAD_CONFIG})),
        "wgrad": (mc.WGRAD_CONFIG, WGRAD_GRID,
                  lambda c: mc.modconv_backward(*bwd_args, **o, need_input_grad=False, configs={"wgrad": c})),
    }
    for name in kernels:
        default, grid, launch = runs[name]
        timed = [(time_ms(lambda c=c: launch(c)), c) for c in grid]
        timed = [(t, c) for t, c in timed if t is not None]
        base = time_ms(lambda: launch(default))
        best_t, best_c = min(timed, key=lambda tc: tc[0])
        yield name, dict(default_ms=base, best_ms=best_t, best_config=best_c)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS,
                        help="kernels to sweep (default: fwd dgrad wgrad)")
    parser.add_argument("--layers", type=int, default=None, metavar="N",
                        help="sweep only the first N layer shapes, >= 1 (default: all)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here (rewritten after each row)")
    args = parser.parse_args(argv)
    if args.layers is not None and args.layers < 1:
        parser.error(f"--layers must be >= 1, got {args.layers}")
    if not torch.cuda.is_available():
        print("tune_modconv needs a CUDA GPU", file=sys.stderr)
        return 2
    import test_bench_modconv as bench

    rows = []
    print("| layer | dtype | kernel | default ms | best ms | best config |")
    print("|---|---|---|---:|---:|---|")
    for shape in bench.layer_shapes()[:args.layers]:
        for dt in args.dtype:
            inp = layer_inputs(*shape, torch.bfloat16 if dt == "bf16" else torch.float32)
            for kernel, r in sweep(inp, args.kernels):
                label = f"{shape[0]} {shape[1]}->{shape[2]} k{shape[3]} r{shape[4]}"
                print(f"| {label} | {dt} | {kernel} | {r['default_ms']:.3f} | {r['best_ms']:.3f} | {r['best_config']} |",
                      flush=True)
                rows.append(dict(shape=shape, dtype=dt, kernel=kernel, **r))
                if args.json:
                    write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
