"""``bench/summarize.py``: a table row per benchmark, and a cut-off suite's empty JSON
named and skipped instead of ending the GPU run's summary with a traceback."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "bench" / "summarize.py"


def test_rows_from_good_files_and_names_the_cut_off_one(tmp_path):
    good = tmp_path / "bench_triplane.json"
    good.write_text(json.dumps({"benchmarks": [{"name": "case[a]", "extra_info": {
        "device": "GPU X", "timer": "cuda-events", "ms": 1.25, "peak_mb": 10.0, "points_per_s": 2.0e6,
        "dram_floor_ms": 0.5, "compute_floor_ms": 0.25, "roofline_fraction": 0.4}}]}))
    empty = tmp_path / "bench_modconv.json"
    empty.write_text("")
    out = subprocess.run([sys.executable, str(SCRIPT), str(good), str(empty), str(tmp_path / "missing.json")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "| case[a] | 1.250 | 10.0 | - | 2e+06 | 0.500 | 0.250 | 0.40 |" in out.stdout
    assert f"(no results: {empty} is empty or not a pytest-benchmark JSON" in out.stdout
    assert f"(no results: {tmp_path / 'missing.json'})" in out.stdout
    assert "device: GPU X" in out.stdout
