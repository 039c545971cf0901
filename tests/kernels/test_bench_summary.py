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


def test_sweep_rows_replace_the_file_whole_or_not_at_all(tmp_path):
    """The GPU sweeps rewrite their JSON after every row: a failed write (here a row that
    is not JSON) leaves the previous rows readable, not a truncated file."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from results_io import write_rows
    finally:
        sys.path.remove(str(SCRIPT.parent))
    path = tmp_path / "tune.json"
    write_rows(path, [{"ms": 1.5}])
    write_rows(path, [{"ms": 1.5}, {"ms": 2.5}])
    assert json.loads(path.read_text()) == [{"ms": 1.5}, {"ms": 2.5}]
    try:
        write_rows(path, [{"ms": 1.5}, {"ms": 2.5}, {"ms": object()}])
    except TypeError:
        pass
    assert json.loads(path.read_text()) == [{"ms": 1.5}, {"ms": 2.5}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.json"]
