"""Markdown table from pytest-benchmark JSON files: python bench/summarize.py bench.json [more.json ...]

Files that a cut-off run did not write are named and skipped."""
from __future__ import annotations

import json
import os
import sys


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(paths: list[str]) -> int:
    benchmarks = []
    for path in paths:
        if not os.path.isfile(path):
            print(f"(no results: {path})\n")
            continue
        try:
            with open(path) as f:
                benchmarks += json.load(f)["benchmarks"]
        except (json.JSONDecodeError, KeyError, TypeError):  # a suite killed while pytest-benchmark held it open
            print(f"(no results: {path} is empty or not a pytest-benchmark JSON; was its run cut off?)\n")
    first = benchmarks[0]["extra_info"] if benchmarks else {}
    print(f"device: {first.get('device', '?')}\n")
    print(f"timer: {first.get('timer', '?')}\n")
    print("| case | median ms | peak MB | saved MB | throughput /s | DRAM floor ms | compute floor ms "
          "| fraction of floor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for b in benchmarks:
        e = b["extra_info"]
        rate = (e.get("points_per_s") or e.get("rays_per_s") or e.get("pixels_per_s") or e.get("images_per_s")
                or e.get("elements_per_s"))
        print(
            f"| {b['name']} | {fmt(e.get('ms'), '.3f')} | {fmt(e.get('peak_mb'), '.1f')} "
            f"| {fmt(e.get('saved_mb'), '.1f')} | {fmt(rate, '.3g')} "
            f"| {fmt(e.get('dram_floor_ms'), '.3f')} | {fmt(e.get('compute_floor_ms'), '.3f')} "
            f"| {fmt(e.get('roofline_fraction'), '.2f')} |"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python bench/summarize.py BENCH_JSON [BENCH_JSON ...]")
    sys.exit(main(sys.argv[1:]))
