"""AOT compile of the fused triplane kernels for sm_80 / sm_90 (no GPU needed).

The interpreter forgives what the real compiler does not; this compiles every
specialization the launchers use and reads the cubin's resources. The fast paths (tf32
and bf16 dot operands) must use tensor cores (`mma`) and must not spill (STACK 0) at the
default block sizes; the exact-fp32 path ("ieee", for tests) only has to compile.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

SCRIPT = r"""
import json, sys
from dataclasses import asdict
from tri3d.kernels.aot import compile_kernel
from tri3d.kernels.triplane_mlp import kernel_specs
rows = []
for spec in kernel_specs():
    fast = "dot=ieee" not in spec.name
    for arch in ((80, 90) if fast else (90,)):
        if not fast and "nh3" not in spec.name:
            continue
        rows.append(asdict(compile_kernel(spec, arch)) | {"fast": fast})
json.dump(rows, sys.stdout)
"""


@pytest.fixture(scope="module")
def reports():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout)


def test_fast_paths_compile_without_spills_and_use_mma(reports):
    fast = [r for r in reports if r["fast"]]
    assert {r["arch"] for r in fast} == {80, 90}
    assert len(fast) >= 2 * 18  # fwd + 2 bwd passes x 2 depths x 3 dtype/precision combos x 2 archs
    spills = [f"{r['name']} sm_{r['arch']}: STACK {r['stack_bytes']}" for r in fast if r["stack_bytes"] or r["local_bytes"]]
    assert not spills, "register spills:\n" + "\n".join(spills)
    assert all(r["uses_mma"] for r in fast)
    assert all(0 < r["registers"] <= 255 for r in fast)


def test_exact_fp32_path_compiles(reports):
    exact = [r for r in reports if not r["fast"]]
    assert len(exact) == 3 and all(r["registers"] > 0 for r in exact)
    assert not any(r["uses_mma"] for r in exact)  # ieee fp32 dots run on FMA units


def test_res_usage_parser():
    from tri3d.kernels.aot import parse_res_usage

    line = "Function k:\nREG:168 STACK:8 SHARED:1024 LOCAL:0 CONSTANT[0]:560 TEXTURE:0 SURFACE:0 SAMPLER:0"
    assert parse_res_usage(line) == {"REG": 168, "STACK": 8, "SHARED": 1024, "LOCAL": 0}
