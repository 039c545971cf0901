"""Issue-bound cost model of a compiled kernel, read from its SASS (no GPU needed).

``cuobjdump -sass`` lists every instruction a warp can issue. With the loop structure of
tri3d's Triton kernels (straight-line code per block of points, at most one runtime loop
over consecutive blocks) the static listing gives the dynamic count: the loop body runs
once per block, the rest once per program (``per_point``). The native kernels' loops run
counts the caller knows from the sizes (samples per ray, channels per lane:
``per_item``). Dividing by the points (samples) handled gives *warp-instructions per
point*, by class; at one instruction per scheduler per clock
(H100 SXM: 132 SMs x 4 schedulers x 1.98 GHz) that bounds the time from below, to be set
beside the DRAM floor (bytes / 3.0 TB/s) and the tensor floor (MMA flops / peak).

Blocks skipped by forward branches (masked-off atomics, rare slow paths) are counted as
executed: the estimate is for full blocks of valid points. Code after the last ``EXIT``
counts only through the ``CALL``s that reach it (a subroutine's instructions up to its
``RET``, e.g. 64-bit integer division, once per call).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# H100 SXM5 (the DESIGN model's machine).
H100 = dict(sms=132, schedulers=4, clock_hz=1.98e9, dram_bytes_per_s=3.0e12,
            tensor_flops={"tf32": 494.7e12, "bf16": 989.4e12, "fp16": 989.4e12},
            regs_per_sm=65536, max_warps_per_sm=64, max_ctas_per_sm=32, shared_per_sm=233472,
            shared_reserved_per_cta=1024)

CLASSES = ("mma", "mufu", "global load", "global store", "local", "shared", "reduction", "membar", "barrier",
           "control", "alu")
_CLASS_OF = {
    "HMMA": "mma", "HGMMA": "mma", "IMMA": "mma", "DMMA": "mma",
    "MUFU": "mufu",
    "LDG": "global load", "LD": "global load", "LDC": "global load", "LDGSTS": "global load",
    "STG": "global store", "ST": "global store",
    "LDL": "local", "STL": "local",  # a thread's stack (spills, local arrays): L1, interleaved across a warp
    "LDS": "shared", "STS": "shared", "LDSM": "shared", "STSM": "shared", "ATOMS": "shared",
    "RED": "reduction", "REDG": "reduction", "ATOM": "reduction", "ATOMG": "reduction",
    "MEMBAR": "membar",
    "BAR": "barrier", "DEPBAR": "barrier", "LDGDEPBAR": "barrier", "WARPGROUP": "barrier",
    "BRA": "control", "EXIT": "control", "BSSY": "control", "BSYNC": "control", "WARPSYNC": "control",
    "CALL": "control", "RET": "control", "BMOV": "control", "YIELD": "control",
}
# Opcodes are upper case except the shape of a warpgroup MMA (``HGMMA.64x64x8.F32.TF32``).
_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.x]*)([^;]*);")


@dataclass(frozen=True)
class Instruction:
    address: int
    opcode: str  # full opcode with modifiers, e.g. "HMMA.1688.F32.TF32"
    target: int | None  # branch target address

    @property
    def kind(self) -> str:
        return kind_of(self.opcode)


def kind_of(opcode: str) -> str:
    """The class (one of ``CLASSES``) of an opcode with or without modifiers (``HMMA.1688``)."""
    return _CLASS_OF.get(opcode.split(".")[0], "alu")


def parse_sass(text: str) -> list[Instruction]:
    """The instructions of a ``cuobjdump -sass`` listing (one kernel), NOPs dropped."""
    out = []
    for address, opcode, operands in _LINE.findall(text):
        if opcode.startswith("NOP"):
            continue
        target = re.search(r"0x([0-9a-f]+)", operands) if opcode.startswith(("BRA", "CALL")) else None
        out.append(Instruction(int(address, 16), opcode, int(target.group(1), 16) if target else None))
    return out


def _executed(instructions: list[Instruction]) -> tuple[list[Instruction], list[tuple[int, int]]]:
    """Instructions up to the last EXIT, each CALL followed by its subroutine's instructions
    (up to its RET), and the address ranges of the runtime loops (one per backward branch,
    in listing order)."""
    exits = [i for i, ins in enumerate(instructions) if ins.opcode.startswith("EXIT")]
    if not exits:
        raise ValueError("no EXIT in the SASS listing")
    main = instructions[: exits[-1] + 1]
    loops = [(ins.target, ins.address) for ins in main
             if ins.opcode.startswith("BRA") and ins.target is not None and ins.target < ins.address]
    body = []
    for ins in main:
        body.append(ins)
        if ins.opcode.startswith("CALL"):
            if ins.target is None:
                raise ValueError(f"CALL at {ins.address:#x} without a target")
            sub = [s for s in instructions if s.address >= ins.target]
            end = next((k for k, s in enumerate(sub) if s.opcode.startswith("RET")), None)
            if end is None:
                raise ValueError(f"subroutine at {ins.target:#x} has no RET")
            # charged at the CALL's address, so a call inside the loop runs per iteration
            body += [Instruction(ins.address, s.opcode, None) for s in sub[: end + 1]]
    return body, loops


def mma_flops(opcode: str) -> int:
    """Flops one warp's MMA instruction does, from its shape: ``HMMA.1688`` is m16 n8 k8;
    ``HGMMA.64x32x8`` is a warpgroup's (4 warps') m64 n32 k8, a quarter per warp."""
    m = re.match(r"[HID]MMA\.(\d{2})(\d)(\d{1,2})", opcode)
    if m:
        return 2 * int(m.group(1)) * int(m.group(2)) * int(m.group(3))
    m = re.match(r"HGMMA\.(\d+)x(\d+)x(\d+)", opcode)
    if m:
        return 2 * int(m.group(1)) * int(m.group(2)) * int(m.group(3)) // 4
    return 0


def per_point(
    sass: str,  # cuobjdump -sass of one kernel
    *,
    num_warps: int,  # warps per program
    points_per_block: int,  # points one pass of the loop body (or the whole kernel) handles
    blocks_per_program: int = 1,  # iterations of the runtime loop
) -> dict[str, float]:
    """Warp-instructions per point by class (``CLASSES``), their ``total``, and ``mma_flops``
    (tensor-core flops per point)."""
    loops = loop_sizes(sass)
    if len(loops) > 1:
        raise ValueError(f"{len(loops)} backward branches: per_point handles at most one loop (see per_item)")
    return per_item(sass, warps=num_warps, items=points_per_block * blocks_per_program,
                    trips=[blocks_per_program] * len(loops))


def loop_counts(sass: str) -> list[dict[str, int]]:
    """Instructions by class (and their ``total``) inside each runtime loop of a listing,
    nested loops included, in the order ``per_item`` takes their trip counts: to check a
    trip model against the code."""
    body, loops = _executed(parse_sass(sass))
    rows = []
    for first, last in loops:
        row = dict.fromkeys(CLASSES, 0)
        for ins in body:
            if first <= ins.address <= last:
                row[ins.kind] += 1
        rows.append(row | {"total": sum(row.values())})
    return rows


def loop_sizes(sass: str) -> list[int]:
    """Instructions inside each runtime loop (``loop_counts``' totals)."""
    return [row["total"] for row in loop_counts(sass)]


def per_item(
    sass: str,  # cuobjdump -sass of one kernel
    *,
    warps: float,  # warps that run the listing for one group of items (e.g. 1: one warp per ray)
    items: float,  # items (e.g. samples) that group handles
    trips: list[float],  # iterations of each loop per entry, in listing order of their backward branches
) -> dict[str, float]:
    """Warp-instructions per item by class, their ``total`` and ``mma_flops``, for code with
    several (nested) loops whose trip counts the caller knows from the sizes it models. An
    instruction runs the product of the trips of every loop around it; the rest once.
    Untaken branches inside a loop (a remainder path) are counted as executed: write the
    loops to be modelled without unrolled copies (``#pragma unroll 1``)."""
    body, loops = _executed(parse_sass(sass))
    if len(trips) != len(loops):
        raise ValueError(f"{len(loops)} loops in the listing (sizes {loop_sizes(sass)}), {len(trips)} trip counts given")
    counts = dict.fromkeys(CLASSES, 0.0)
    flops = 0.0
    for ins in body:
        runs = 1.0
        for (first, last), n in zip(loops, trips):
            if first <= ins.address <= last:
                runs *= n
        weight = runs * warps / items
        counts[ins.kind] += weight
        flops += weight * mma_flops(ins.opcode)
    counts["total"] = sum(counts[c] for c in CLASSES)
    counts["mma_flops"] = flops
    return counts


def warps_per_sm(registers: int, shared_bytes: int, num_warps: int, gpu: dict = H100) -> int:
    """Resident warps per SM for a kernel's registers/thread, dynamic shared memory per CTA
    and warps per CTA (register allocation in 256-register units per warp)."""
    regs_per_warp = -(-registers * 32 // 256) * 256
    by_regs = gpu["regs_per_sm"] // (regs_per_warp * num_warps)
    by_shared = gpu["shared_per_sm"] // (shared_bytes + gpu["shared_reserved_per_cta"])
    by_warps = gpu["max_warps_per_sm"] // num_warps
    return min(by_regs, by_shared, by_warps, gpu["max_ctas_per_sm"]) * num_warps


def issue_bound_seconds(warp_instructions: float, gpu: dict = H100) -> float:
    """Time to issue this many warp-instructions at one per scheduler per clock."""
    return warp_instructions / (gpu["sms"] * gpu["schedulers"] * gpu["clock_hz"])
