"""Compile csrc/composite_cuda.cu (the launchers of every CUDA kernel) with nvcc for sm_80
and sm_90 and report ptxas resource usage per kernel (compile check for machines that
cannot run CUDA); ``kernel_sass`` gives the SASS of each kernel for the cost model
(bench/sass_report.py).

Usage: python csrc/nvcc_report.py [--nvcc PATH]
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("composite_cuda.cu")
ARCHS = (80, 90)


KERNEL = re.compile(r"(composite_forward_kernel|composite_backward_kernel|importance_kernel|merge_sorted_kernel|"
                    r"bias_act_forward_kernel|bias_act_backward_kernel)I([fd])")


def kernel_label(mangled: str) -> str:
    """``composite_forward_kernel<float>`` for the mangled name of an instantiation."""
    name = KERNEL.search(mangled)
    return f"{name.group(1)}<{'float' if name.group(2) == 'f' else 'double'}>" if name else mangled


def kernel_sass(nvcc: str, cuobjdump: str, arch: int = 90) -> dict[str, str]:
    """The SASS listing of every kernel instantiation for ``sm_<arch>``, by label."""
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "composite_cuda.cubin"
        cmd = [nvcc, "-std=c++17", "-O3", "-cubin", str(SOURCE), f"-I{SOURCE.parent}",
               f"-gencode=arch=compute_{arch},code=sm_{arch}", "-o", str(cubin)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"nvcc failed:\n{out.stderr[-4000:]}")
        listing = subprocess.run([cuobjdump, "-sass", str(cubin)], capture_output=True, text=True, check=True).stdout
    return {kernel_label(part.split("\n", 1)[0]): part for part in re.split(r"\n\s+Function : ", listing)[1:]}


def compile_report(nvcc: str) -> list[dict]:
    """Rows of {kernel, arch, registers, stack, spill_stores, spill_loads}; raises on compile errors."""
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHS]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [nvcc, "-std=c++17", "-O3", "-c", str(SOURCE), f"-I{SOURCE.parent}", *gencode, "-Xptxas", "-v",
               "-o", str(Path(tmp) / "composite_cuda.o")]
        out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"nvcc failed:\n{out.stderr[-4000:]}")
    rows, current = [], None
    for line in out.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\w+)' for 'sm_(\d+)'", line)
        if m:
            current = {"kernel": kernel_label(m.group(1)), "arch": int(m.group(2))}
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and current is not None:
            current.update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and current is not None:
            current["registers"] = int(m.group(1))
            rows.append(current)
            current = None
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nvcc", default=shutil.which("nvcc"))
    args = parser.parse_args(argv)
    if not args.nvcc:
        print("nvcc not found: skipping the CUDA compile check")
        return 0
    for r in compile_report(args.nvcc):
        print(f"{r['kernel']:<36} sm_{r['arch']}  REG {r['registers']:>3}  STACK {r['stack']:>4}  "
              f"SPILL st/ld {r['spill_stores']}/{r['spill_loads']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
