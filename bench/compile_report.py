"""Print the AOT compile report of every Triton kernel: registers, stack, shared memory, mma.

Usage: python bench/compile_report.py [--arch 80 90] [--match TEXT] [--json PATH]

Runs on a machine without a GPU (Triton ships ptxas and cuobjdump). Watch REG/STACK after
every kernel change: STACK > 0 means spills.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", type=int, nargs="+", default=[80, 90], choices=[80, 86, 89, 90])
    parser.add_argument("--match", default="", help="only kernels whose label contains this text")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    os.environ.pop("TRITON_INTERPRET", None)
    from tri3d.kernels.aot import ARCHS, compile_kernel
    from tri3d.kernels import modconv, triplane_mlp

    rows = []
    for spec in triplane_mlp.kernel_specs() + modconv.kernel_specs():
        if args.match not in spec.name:
            continue
        for arch in (a for a in args.arch if a in spec.archs or a not in ARCHS):
            report = compile_kernel(spec, arch)
            print(report.row(), flush=True)
            rows.append(asdict(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
