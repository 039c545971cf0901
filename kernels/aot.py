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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from tri3d.kernels.common import COMPILE_OPTIONS

ARCHS = (80, 90)
# Largest dynamic shared memory one block may request (A100: 163 KB, H100: 227 KB).
MAX_SHARED_BYTES = {80: 166912, 90: 232448}


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
        divisible_by_16: runtime integer scalars the JIT hints as multiples of 16.
        num_stages: software-pipelining stages (``None``: Triton's default).
        maxnreg: registers per thread the compiler may use (``None``: no cap; Triton's
            ``maxnreg`` launch option).
        scalar_values: the runtime scalars' values at the launch the spec was made from.
        archs: the GPU architectures this specialization is launched on (a launch config
            may differ per architecture).
    """

    name: str
    fn: Any
    pointers: dict[str, str]
    scalars: dict[str, str]
    constexprs: dict[str, Any]
    num_warps: int = 4
    divisible_by_16: tuple[str, ...] = ()
    num_stages: int | None = None  # software-pipelining stages of loops (None: Triton's default)
    scalar_values: dict[str, Any] = field(default_factory=dict)
    archs: tuple[int, ...] = ARCHS
    maxnreg: int | None = None  # register cap per thread (None: none)
    enable_fp_fusion: bool = COMPILE_OPTIONS["enable_fp_fusion"]  # multiplies and adds contracted to FMAs


def launch_spec(name: str, fn: Any, values: dict[str, Any], num_warps: int,
                num_stages: int | None = None, archs: tuple[int, ...] = ARCHS,
                maxnreg: int | None = None,
                enable_fp_fusion: bool = COMPILE_OPTIONS["enable_fp_fusion"]) -> KernelSpec:
    """The specialization Triton's JIT compiles for a launch with these argument values
    (its rules since 3.0): a pointer, given as its element type ("fp32", "bf16", "i32"),
    is 16-byte aligned (torch allocations are); a runtime integer equal to 1 becomes a
    constexpr, one divisible by 16 gets a divisibility hint, and it is i32 when it fits,
    else i64; a float is fp32; ``tl.constexpr`` parameters take their value."""
    pointers, scalars, constexprs, divisible = {}, {}, {}, []
    compile_time = _constexpr_names(fn)
    for n in fn.arg_names:
        if n not in values:
            raise ValueError(f"{name}: no value given for kernel argument {n!r}")
        v = values[n]
        if n in compile_time:
            constexprs[n] = v
        elif isinstance(v, str):
            pointers[n] = v
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{name}: argument {n!r} must be an element type, an int or a float, got {v!r}")
        elif isinstance(v, float):
            scalars[n] = "fp32"
        elif v == 1:
            constexprs[n] = 1
        else:
            scalars[n] = "i32" if -(2**31) <= v < 2**31 else "i64"
            if v % 16 == 0:
                divisible.append(n)
    return KernelSpec(name, fn, pointers, scalars, constexprs, num_warps, tuple(divisible), num_stages,
                      {n: values[n] for n in scalars}, archs, maxnreg, enable_fp_fusion)


@dataclass(frozen=True)
class CompileReport:
    name: str
    arch: int
    registers: int
    stack_bytes: int
    shared_bytes: int  # static shared memory in the cubin (Triton's kernels have none)
    local_bytes: int
    uses_mma: bool
    membar: int = 0  # GPU/system-scope MEMBAR instructions in the SASS (acq_rel atomics put one before each)
    atomics: int = 0  # global reductions / atomics in the SASS (RED, ATOM)
    dynamic_shared_bytes: int = 0  # shared memory Triton requests at launch (``metadata.shared``)
    wgmma_shapes: tuple[str, ...] = ()  # distinct Hopper wgmma shapes in the PTX, e.g. "m64n32k16.f32.bf16.bf16"

    def row(self) -> str:
        return (
            f"{self.name:<44} sm_{self.arch}  REG {self.registers:>3}  STACK {self.stack_bytes:>5}  "
            f"LOCAL {self.local_bytes:>5}  SHARED {self.dynamic_shared_bytes:>6}  "
            f"mma {'yes' if self.uses_mma else 'no'}  MEMBAR {self.membar}  RED/ATOM {self.atomics}"
        )


def _constexpr_names(fn: Any) -> set[str]:
    """Names of a kernel's ``tl.constexpr`` parameters (a JITFunction, or the interpreter's
    wrapper, whose annotations may be strings)."""
    if hasattr(fn, "params"):
        return {p.name for p in fn.params if p.is_constexpr}
    return {n for n, a in fn.fn.__annotations__.items() if "constexpr" in str(a)}


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
            if n in spec.divisible_by_16:
                attrs[(i,)] = [["tt.divisibility", 16]]
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
    return compile_with_sass(spec, arch)[0]


def compile_with_sass(spec: KernelSpec, arch: int) -> tuple[CompileReport, str]:
    """Compile ``spec`` for ``sm_<arch>``: the resource report and the ``cuobjdump -sass`` listing."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise RuntimeError("AOT compilation needs real kernels: unset TRITON_INTERPRET")
    signature, constexprs, attrs = _signature(spec)
    src = ASTSource(fn=spec.fn, signature=signature, constexprs=constexprs, attrs=attrs)
    options = ({"num_warps": spec.num_warps} | ({"num_stages": spec.num_stages} if spec.num_stages else {})
               | ({"maxnreg": spec.maxnreg} if spec.maxnreg else {}) | {"enable_fp_fusion": spec.enable_fp_fusion})
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
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
        dynamic_shared_bytes=int(compiled.metadata.shared),
        wgmma_shapes=tuple(sorted(set(re.findall(r"wgmma\.mma_async\.sync\.aligned\.(\S+?);?\s", ptx)))),
        arch=arch,
        registers=usage["REG"],
        stack_bytes=usage["STACK"],
        shared_bytes=usage["SHARED"],
        local_bytes=usage["LOCAL"],
        uses_mma=bool(re.search(r"\b(mma|wgmma)\.", ptx)),
        membar=membar,
        atomics=atomics,
    ), sass


def count_sass(sass: str) -> tuple[int, int]:
    """``(MEMBAR, RED + ATOM)`` instruction counts of a ``cuobjdump -sass`` listing. Only
    GPU- or system-scope fences count (``MEMBAR.ALL.GPU``: what an ordered atomic costs);
    CTA-scope ones (``MEMBAR.ALL.CTA``) order shared memory inside a block."""
    tokens = re.findall(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", sass)
    opcodes = [t.split(".")[0] for t in tokens]
    membar = sum(op == "MEMBAR" and (".GPU" in t or ".SYS" in t) for op, t in zip(opcodes, tokens))
    return membar, sum(op in ("RED", "REDG", "ATOM", "ATOMG", "REDUX") for op in opcodes)
