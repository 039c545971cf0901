#!/usr/bin/env bash
# One call on a lent GPU machine (no registry access): install, `tri3d doctor`, the
# GPU-facing tests on CUDA, the triplane bench, the triplane forward and backward launch
# sweeps, one backward launch's hardware counters (ncu), the triplane time breakdown, the
# multi-view bench, the modconv sweep, the other bench suites (compositor, bias_act,
# modconv) and the compile report, in that order of priority: correctness first, then the
# kernels in flight. A lease gives 15 minutes of device time and 10 per command, so the
# whole script keeps to BUDGET seconds (default 540): each phase has a cap and gets at
# most what is left, and a phase that would start with under 20 s left is skipped. Every
# phase writes its own files under OUT_DIR as it goes (each bench file its own JSON), so a
# cut-off call still brings back what finished. A doctor failure is reported and the rest
# still runs (the tests then say which path disagrees).
#
# Usage: bash bench/run_gpu.sh OUT_DIR [BUDGET_S]
set -uo pipefail
out=${1:?usage: bash bench/run_gpu.sh OUT_DIR [BUDGET_S]}
budget=${2:-540}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
start=$SECONDS
status=0

# run_phase NAME CAP_S CMD...: runs CMD under `timeout min(CAP_S, time left - 10)`, output
# to OUT_DIR/NAME.txt, and prints the phase's tail and wall time.
run_phase() {
    local name=$1 cap=$2
    shift 2
    local left=$((budget - (SECONDS - start) - 10))
    if [ "$left" -lt 20 ]; then
        echo "== $name: skipped ($left s left of the budget)"
        return
    fi
    local limit=$((cap < left ? cap : left))
    echo "== $name (limit $limit s)"
    local t0=$SECONDS
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    [ "$rc" -eq 0 ] || status=1
    tail -8 "$out/$name.txt"
    echo "-- $name: rc $rc, $((SECONDS - t0)) s"
}

{
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    echo "commit: ${TRI3D_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
    python -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

# Build the native extension for this GPU's architecture only (a fraction of the time).
arch=$(python -c "import torch; print('%d%d' % torch.cuda.get_device_capability())" 2>/dev/null || echo 90)
export CMAKE_CUDA_ARCHITECTURES=$arch
# `python -m pip`: a bare `pip` on PATH can belong to another interpreter than `python`.
run_phase install 180 python -m pip install -v -e . --no-build-isolation --no-deps
grep -E "^tri3d|CUDA kernels|WARNING: native" "$out/install.txt"
python -c "import tri3d.kernels, tri3d._C; print('installed:', tri3d.__file__, tri3d._C.__file__)" \
    || { status=1; echo "tri3d is not importable as installed (see $out/install.txt)"; }

run_phase doctor 90 python -m tri3d.cli doctor --device cuda

# The tests whose paths change on CUDA (fused kernels, the native compositor, NVRTC,
# the renderer and models that dispatch to them), several files at a time.
run_phase tests 180 python -m pytest -q -n 12 --dist loadfile --timeout 120 tests/ops tests/csrc tests/render \
    tests/models tests/test_import.py tests/train/test_config.py

run_bench() {
    run_phase "bench_$1" "$2" python -m pytest -q "bench/test_bench_$1.py" \
        --benchmark-json "$out/bench_$1.json" --benchmark-columns=median,rounds
}
run_bench triplane 90

# Which forward launch config of the fused triplane decode is fastest, then which backward
# config, with and without loading the next block's inputs ahead (prefetch), at the sizes
# that can win (16-point blocks, 16 programs per SM; register caps all lost on 2026-11-28),
# both at the eg3d size.
run_phase tune_triplane_fwd 60 python bench/tune_triplane.py --jobs forward --layouts uniform \
    --precision tf32 bf16 --json "$out/tune_triplane_fwd.json"
run_phase tune_triplane 120 python bench/tune_triplane.py --jobs all --layouts uniform rays \
    --precision tf32 bf16 --block 16 --warps 4 --prefetch 0 1 --programs-per-sm 16 \
    --json "$out/tune_triplane.json"
# Hardware counters of one fused triplane backward launch (eg3d size, uniform points, tf32):
# occupancy, stall reasons, L2 / atomic throughput, and the stall samples per SASS
# instruction summed by kind. Clocks are left as they are.
run_phase ncu 120 bash bench/ncu_triplane_bwd.sh "$out"
[ -f "$out/ncu_triplane_bwd_sass.csv" ] && python bench/ncu_stalls.py "$out/ncu_triplane_bwd_sass.csv" \
    > "$out/ncu_stalls.txt" 2>&1
# Where the fused triplane decode's time goes (scatter, weight reductions, point layout).
run_phase triplane_breakdown 90 python bench/triplane_breakdown.py --json "$out/triplane_breakdown.json"

run_bench multiview 120
# The whole modconv sweep needs ~10 min; its rows are written as they finish, so the
# capped phase brings back the first layers' (bf16 first: the training precision).
run_phase tune_modconv 120 python bench/tune_modconv.py --dtype bf16 fp32 --json "$out/tune_modconv.json"
run_bench composite 120
run_bench bias_act 60
run_bench modconv 120

run_phase compile_report 90 python bench/compile_report.py --arch "$arch" --json "$out/compile_report.json"

echo "== summary"
python bench/summarize.py "$out"/bench_*.json | tee "$out/summary.md"
echo "total $((SECONDS - start)) s"
exit $status
