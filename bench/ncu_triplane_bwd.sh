#!/usr/bin/env bash
# Hardware counters of one fused triplane backward launch (eg3d size, uniform points, tf32,
# the first `fwd+bwd all` of bench/triplane_breakdown.py), for a GPU lease: occupancy,
# scheduler and warp-state statistics with the stall reasons, and per SASS instruction the
# warp-stall samples, so the next kernel change knows which instructions the warps wait on
# (barriers around layout conversions, the gathers, the MMAs). Clocks are left as they are.
#
# Writes to OUT_DIR: ncu_triplane_bwd.txt (the sections, as run_gpu.sh printed them
# before), ncu_triplane_bwd_raw.csv (every collected metric, the stall ratios included) and
# ncu_triplane_bwd_sass.csv (the source page: one row per SASS instruction with its stall
# samples). `python bench/ncu_stalls.py OUT_DIR/ncu_triplane_bwd_sass.csv` sums the samples
# by instruction kind.
#
# Usage: bash bench/ncu_triplane_bwd.sh OUT_DIR
set -uo pipefail
out=${1:?usage: bash bench/ncu_triplane_bwd.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -z "$ncu_bin" ]; then
    echo "no ncu on this machine"
    exit 1
fi
tmp=$(mktemp -d)  # the binary report, removed on exit (the CSVs and text are what come back)
trap 'rm -rf "$tmp"' EXIT
report=$tmp/triplane_bwd
"$ncu_bin" --clock-control none -k regex:triplane_mlp_bwd -c 1 -o "$report" \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section SchedulerStats --section SourceCounters \
    --section InstructionStats \
    python bench/triplane_breakdown.py --precision tf32 --rounds 1 || exit 1
# export NAME ARGS...: one page of the report into OUT_DIR/NAME, whole or not at all.
export_page() {
    local name=$1
    shift
    "$ncu_bin" -i "$report.ncu-rep" "$@" > "$tmp/$name" && mv "$tmp/$name" "$out/$name"
}
export_page ncu_triplane_bwd.txt --page details || exit 1
export_page ncu_triplane_bwd_raw.csv --page raw --csv || exit 1
export_page ncu_triplane_bwd_sass.csv --page source --print-source sass --csv || exit 1
grep -E "Duration|Registers Per|Achieved Occupancy|Block Limit|No Eligible|Eligible Warps" "$out/ncu_triplane_bwd.txt" || true
