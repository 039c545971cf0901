"""``bench/ncu_stalls.py``: Nsight Compute's source page summed by stall reason and by
instruction kind, on a page written here in the layout ncu 2025.3 exports (a kernel-name
line, then the header; counts with thousands separators; per-reason columns beside their
"(Not Issued)" twins, which must not be counted twice)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "bench" / "ncu_stalls.py"
HEADER = ('"Address","Source","Warp Stall Sampling (All Samples)","Warp Stall Sampling (Not-issued Samples)",'
          '"Instructions Executed","stall_barrier","stall_long_sb","stall_wait",'
          '"stall_barrier (Not Issued)","stall_long_sb (Not Issued)","stall_wait (Not Issued)"')
ROWS = [
    # address, SASS, all samples, not issued, executed, barrier, long_sb, wait (then the not-issued twins)
    ("0x10", "      @!P6  LDG.E R19, desc[UR16][R2.64]", "10", "5", "1,000", "0", "0", "10"),
    ("0x20", "      FFMA R19, R19, R182, 1", "1,200", "1,100", "1,000", "0", "1,150", "50"),
    ("0x30", "      BAR.SYNC.DEFER_BLOCKING 0x0", "300", "290", "500", "280", "0", "20"),
    ("0x40", "      HMMA.1688.F32.TF32 R144, R152, R156, R144", "90", "80", "2,000", "0", "0", "90"),
    ("0x50", "      NOP", "0", "0", "500", "0", "0", "0"),
]


def _page(tmp_path: Path) -> Path:
    lines = ['"Kernel Name","triplane_mlp_bwd_kernel",', HEADER]
    for row in ROWS:
        twins = [str(int(int(value.replace(",", "")) * 0.9)) for value in row[5:]]
        lines.append(",".join(f'"{value}"' for value in (*row, *twins)))
    path = tmp_path / "sass.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sums_by_reason_and_kind(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import ncu_stalls
    finally:
        sys.path.remove(str(SCRIPT.parent))
    reasons, kinds, instructions = ncu_stalls.summarize(ncu_stalls.read_source_page(_page(tmp_path)))
    # Each reason is its own column's sum; the "(Not Issued)" twins are not added in.
    assert reasons == {"barrier": 280.0, "long_sb": 1150.0, "wait": 170.0}
    assert kinds["global load"] == dict(samples=10.0, executed=1000.0)
    assert kinds["alu"] == dict(samples=1200.0, executed=1500.0)  # the FFMA and the NOP
    assert kinds["barrier"] == dict(samples=300.0, executed=500.0)
    assert kinds["mma"] == dict(samples=90.0, executed=2000.0)
    top = sorted(instructions, key=lambda item: -item[0])[0]
    assert top == (1200.0, "long_sb", "FFMA R19, R19, R182, 1")
    assert next(reason for _, reason, text in instructions if text.startswith("BAR")) == "barrier"


def test_cli_prints_shares_and_names_a_bad_file(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(_page(tmp_path)), "--top", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "| long_sb | 1150 | 71.9% |" in out.stdout  # 1150 of 1600 samples
    assert "| alu | 1200 | 75.0% | 30.0% |" in out.stdout  # 1200 of 1600 samples; 1500 of 5000 executed
    assert "long_sb         FFMA R19, R19, R182, 1" in out.stdout
    other = tmp_path / "details.txt"
    other.write_text("Section: Occupancy\n")
    bad = subprocess.run([sys.executable, str(SCRIPT), str(other)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and str(other) in bad.stderr and "not an ncu source page" in bad.stderr
    missing = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "none.csv")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "sass_csv: no such file" in missing.stderr


def test_rejects_negative_top(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(_page(tmp_path)), "--top", "-1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--top must be >= 0" in out.stderr
