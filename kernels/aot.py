"""Ahead-of-time compilation of the Triton kernels for real GPU targets, without a GPU.

The interpreter forgives what the compiler does not (``tl.dot`` needs every dim >= 16,
power-of-two block shapes, dtype mismatches), so every kernel is also compiled for
sm_80 and sm_90 with ``triton.compile(ASTSource(...), target=GPUTarget("cuda", cc, 32))``.
The resource use of the resulting cubin (registers, stack/spills, shared memory) is read
with the ``cuobjdump`` that Triton ships.

Must run without ``TRITON_INTERPRET=1`` (it needs real ``JITFunction`` objects).
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

ARCHS = (80, 90)


@dataclass(frozen=True)
class KernelSpec:
    """One specialization of a kernel to compile.

    Attributes:
        name: label for reports.
        fn: the ``@triton.jit`` kernel.
        pointers: pointer argument name -> element type ("fp32", "bf16", "i32", ...).
        scalars: runtime scalar argument name -> type ("i32", "i64", "fp32").
        constexprs: compile-time argument name -> value.
        num_warps: warps per program.
    """

    name: str
    fn: Any
    pointers: dict[str, str]
    scalars: dict[str, str]
    constexprs: dict[str, Any]
    num_warps: int = 4


@dataclass(frozen=True)
class CompileReport:
    name: str
    arch: int
    registers: int
    stack_bytes: int
    shared_bytes: int
    local_bytes: int
    uses_mma: bool
    membar: int = 0  # GPU/system-scope MEMBAR instructions in the SASS (acq_rel atomics put one before each)
    atomics: int = 0  # global reductions / atomics in the SASS (RED, ATOM)

    def row(self) -> str:
        return (
            f"{self.name:<44} sm_{self.arch}  REG {self.registers:>3}  STACK {self.stack_bytes:>5}  "
            f"LOCAL {self.local_bytes:>5}  SHARED {self.shared_bytes:>6}  mma {'yes' if self.uses_mma else 'no'}  "
            f"MEMBAR {self.membar}  RED/ATOM {self.atomics}"
        )


def _signature(spec: KernelSpec) -> tuple[dict[str, str], dict[str, Any], dict[tuple[int, ...], list]]:
    names = spec.fn.arg_names
    known = set(spec.pointers) | set(spec.scalars) | set(spec.constexprs)
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"{spec.name}: no type given for kernel arguments {missing}")
    signature, attrs = {}, {}
    for i, n in enumerate(names):
        if n in spec.pointers:
            signature[n] = "*" + spec.pointers[n]
            attrs[(i,)] = [["tt.divisibility", 16]]  # torch allocations are 16-byte aligned
        elif n in spec.scalars:
            signature[n] = spec.scalars[n]
        else:
            signature[n] = "constexpr"
    return signature, dict(spec.constexprs), attrs


def cuobjdump_path() -> Path:
    """The ``cuobjdump`` shipped inside Triton's NVIDIA backend."""
    import triton.backends.nvidia as nvidia

    path = Path(nvidia.__file__).parent / "bin" / "cuobjdump"
    if not path.exists():
        raise FileNotFoundError(f"cuobjdump not found at {path} (Triton's NVIDIA backend ships it)")
    return path


def parse_res_usage(text: str) -> dict[str, int]:
    """Parse ``cuobjdump -res-usage`` output (the first function's resource line)."""
    fields = {}
    for key in ("REG", "STACK", "SHARED", "LOCAL"):
        m = re.search(rf"\b{key}:(\d+)", text)
        fields[key] = int(m.group(1)) if m else 0
    return fields


def compile_kernel(spec: KernelSpec, arch: int) -> CompileReport:
    """Compile ``spec`` for ``sm_<arch>`` and report the cubin's resource use."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise RuntimeError("AOT compilation needs real kernels: unset TRITON_INTERPRET")
    signature, constexprs, attrs = _signature(spec)
    src = ASTSource(fn=spec.fn, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": spec.num_warps})
    ptx = compiled.asm.get("ptx", "")
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / f"{spec.fn.__name__}.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        out = subprocess.run(
            [str(cuobjdump_path()), "-res-usage", str(cubin)], capture_output=True, text=True, check=True
        ).stdout
        sass = subprocess.run(
            [str(cuobjdump_path()), "-sass", str(cubin)], capture_output=True, text=True, check=True
        ).stdout
    usage = parse_res_usage(out)
    membar, atomics = count_sass(sass)
    return CompileReport(
        name=spec.name,
        arch=arch,
        registers=usage["REG"],
        stack_bytes=usage["STACK"],
        shared_bytes=usage["SHARED"],
        local_bytes=usage["LOCAL"],
        uses_mma=bool(re.search(r"\b(mma|wgmma)\.", ptx)),
        membar=membar,
        atomics=atomics,
    )


def count_sass(sass: str) -> tuple[int, int]:
    """``(MEMBAR, RED + ATOM)`` instruction counts of a ``cuobjdump -sass`` listing. Only
    GPU- or system-scope fences count (``MEMBAR.ALL.GPU``: what an ordered atomic costs);
    CTA-scope ones (``MEMBAR.ALL.CTA``) order shared memory inside a block."""
    tokens = re.findall(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", sass)
    opcodes = [t.split(".")[0] for t in tokens]
    membar = sum(op == "MEMBAR" and (".GPU" in t or ".SYS" in t) for op, t in zip(opcodes, tokens))
    return membar, sum(op in ("RED", "REDG", "ATOM", "ATOMG", "REDUX") for op in opcodes)
