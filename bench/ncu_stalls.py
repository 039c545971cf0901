"""Where a kernel's warps wait, from Nsight Compute's source page (``bench/ncu_triplane_bwd.sh``).

Reads ``ncu -i R --page source --print-source sass --csv`` (one row per SASS instruction:
its warp-stall samples, split by stall reason in the ``stall_<reason>`` columns, and the
instructions executed) and prints
- the stall reasons, summed over the kernel (``long_sb``: waiting on a global or local
  load; ``short_sb``: on shared memory or a MUFU result; ``wait``: a fixed-latency
  dependency such as an MMA chain; ``barrier``: at ``BAR.SYNC``);
- the samples by instruction kind (the SASS cost model's classes,
  ``tri3d.kernels.sass_cost.CLASSES``) beside each kind's share of the instructions
  executed. A sample is counted at the instruction that waits, not at the one it waits
  for: an FFMA waiting on a gather counts as ``alu``;
- the instructions with the most samples and the reason each mostly waits for.

Usage: python bench/ncu_stalls.py SASS_CSV [--top N]
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

from tri3d.kernels.sass_cost import CLASSES, kind_of

# The source page's columns (Nsight Compute 2025.3): the SASS text, the stall samples over
# all cycles, the instructions executed (warp level), and one column per stall reason.
SOURCE_COLUMN = "Source"
SAMPLES_COLUMN = "Warp Stall Sampling (All Samples)"
EXECUTED_COLUMN = "Instructions Executed"
_REASON = re.compile(r"^stall_(\w+)$")  # the "(Not Issued)" columns do not match
_OPCODE = re.compile(r"^\s*(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.x]*)")


def _number(text: str) -> float:
    """A count as ncu writes it (thousands separated by commas, empty for none)."""
    text = text.replace(",", "").strip()
    return float(text) if text else 0.0


def read_source_page(path: Path) -> list[dict[str, str]]:
    """The page's instruction rows as dicts, from its header line on (ncu writes the kernel's
    name on a line before it)."""
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if SOURCE_COLUMN in line and SAMPLES_COLUMN in line), None)
    if start is None:
        raise SystemExit(f"{path}: no header with '{SOURCE_COLUMN}' and '{SAMPLES_COLUMN}' (not an ncu source page?)")
    return list(csv.DictReader(lines[start:]))


def summarize(rows: list[dict[str, str]]) -> tuple[dict[str, float], dict[str, dict[str, float]], list[tuple]]:
    """Samples per stall reason; per instruction kind the samples and instructions
    executed; and per instruction (samples, dominant reason, SASS text)."""
    reasons = {}
    kinds = {kind: dict(samples=0.0, executed=0.0) for kind in CLASSES}
    instructions = []
    for row in rows:
        match = _OPCODE.match(row[SOURCE_COLUMN])
        if match is None:
            continue
        by_reason = {m.group(1): _number(value) for name, value in row.items()
                     if name and (m := _REASON.match(name))}
        for reason, samples in by_reason.items():
            reasons[reason] = reasons.get(reason, 0.0) + samples
        samples = _number(row[SAMPLES_COLUMN])
        kind = kinds[kind_of(match.group(1))]
        kind["samples"] += samples
        kind["executed"] += _number(row.get(EXECUTED_COLUMN, ""))
        dominant = max(by_reason, key=by_reason.get) if any(by_reason.values()) else "-"
        instructions.append((samples, dominant, row[SOURCE_COLUMN].strip()))
    return reasons, kinds, instructions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sass_csv", type=Path, help="ncu --page source --print-source sass --csv output")
    parser.add_argument("--top", type=int, default=15, help="instructions listed (default 15)")
    args = parser.parse_args(argv)
    if not args.sass_csv.is_file():
        parser.error(f"sass_csv: no such file: {args.sass_csv}")
    if args.top < 0:
        parser.error("--top must be >= 0")

    reasons, kinds, instructions = summarize(read_source_page(args.sass_csv))
    all_reasons = sum(reasons.values()) or 1.0
    print("| stall reason | samples | share |")
    print("|---|---:|---:|")
    for reason, samples in sorted(reasons.items(), key=lambda item: -item[1]):
        if samples / all_reasons >= 0.005:
            print(f"| {reason} | {samples:.0f} | {samples / all_reasons:.1%} |")
    all_samples = sum(kind["samples"] for kind in kinds.values()) or 1.0
    all_executed = sum(kind["executed"] for kind in kinds.values()) or 1.0
    print("\n| instruction kind (the waiting one) | samples | share | share of instructions executed |")
    print("|---|---:|---:|---:|")
    for name, kind in sorted(kinds.items(), key=lambda item: -item[1]["samples"]):
        if kind["samples"] or kind["executed"]:
            print(f"| {name} | {kind['samples']:.0f} | {kind['samples'] / all_samples:.1%} "
                  f"| {kind['executed'] / all_executed:.1%} |")
    print(f"\ntop {args.top} instructions by samples (share, mostly waiting on):")
    for samples, dominant, text in sorted(instructions, key=lambda item: -item[0])[:args.top]:
        print(f"{samples:10.0f}  {samples / all_samples:6.1%}  {dominant:14s}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
