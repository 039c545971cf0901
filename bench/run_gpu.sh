#!/usr/bin/env bash
# One call on a lent GPU machine (no registry access): install, `tri3d doctor` (stops here
# if a path disagrees with its reference), the test suite on CUDA, the AOT compile report,
# and every bench suite at full size. Writes logs, JSON and
# a markdown summary under OUT_DIR.
#
# Usage: bash bench/run_gpu.sh OUT_DIR
set -uo pipefail
out=${1:?usage: bash bench/run_gpu.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
status=0

{
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

pip install -e . --no-build-isolation --no-deps > "$out/install.log" 2>&1 || { echo "install failed"; tail -20 "$out/install.log"; exit 1; }

echo "== tri3d doctor (every fused / native path against its reference on this GPU)"
python -m tri3d.cli doctor --device cuda > "$out/doctor.txt" 2>&1
doctor_rc=$?
cat "$out/doctor.txt"
if [ "$doctor_rc" -ne 0 ]; then
    echo "tri3d doctor failed: stopping before the tests and benches (see $out/doctor.txt)"
    exit 1
fi

echo "== tests on CUDA"
python -m pytest -q tests > "$out/tests.txt" 2>&1 || status=1
tail -5 "$out/tests.txt"

echo "== AOT compile report"
python bench/compile_report.py --json "$out/compile_report.json" > "$out/compile_report.txt" 2>&1 || status=1
grep -E "REG" "$out/compile_report.txt" | head -40

echo "== benches"
python -m pytest -q bench --benchmark-json "$out/bench.json" --benchmark-columns=median,rounds > "$out/bench.txt" 2>&1 || status=1
tail -5 "$out/bench.txt"
python bench/summarize.py "$out/bench.json" | tee "$out/summary.md"

echo "== modconv launch-configuration sweep"
timeout 900 python bench/tune_modconv.py --json "$out/tune_modconv.json" > "$out/tune_modconv.md" 2>&1 || status=1
tail -30 "$out/tune_modconv.md"
exit $status
