"""Markdown table from a pytest-benchmark JSON file: python bench/summarize.py bench.json"""
from __future__ import annotations

import json
import sys


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(path: str) -> int:
    data = json.load(open(path))
    print(f"device: {data['benchmarks'][0]['extra_info'].get('device', '?') if data['benchmarks'] else '?'}\n")
    print(f"timer: {data['benchmarks'][0]['extra_info'].get('timer', '?') if data['benchmarks'] else '?'}\n")
    print("| case | median ms | peak MB | throughput /s | DRAM floor ms | L2 floor ms | compute floor ms "
          "| fraction of floor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for b in data["benchmarks"]:
        e = b["extra_info"]
        rate = e.get("points_per_s") or e.get("rays_per_s") or e.get("pixels_per_s") or e.get("images_per_s")
        print(
            f"| {b['name']} | {fmt(e.get('ms'), '.3f')} | {fmt(e.get('peak_mb'), '.1f')} | {fmt(rate, '.3g')} "
            f"| {fmt(e.get('dram_floor_ms'), '.3f')} | {fmt(e.get('l2_floor_ms'), '.3f')} "
            f"| {fmt(e.get('compute_floor_ms'), '.3f')} | {fmt(e.get('roofline_fraction'), '.2f')} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
