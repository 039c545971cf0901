"""AOT compile of the fused triplane kernels for sm_80 / sm_90 (no GPU needed).

The interpreter forgives what the real compiler does not; this compiles every
specialization the launchers use and reads the cubin's resources. The fast paths (tf32
and bf16 dot operands) must use tensor cores (`mma`) and must not spill (STACK 0) at the
default block sizes, except where a spilling config was measured faster on a GPU (the
sm_90 backward with 3 hidden layers); the exact-fp32 path ("ieee", for tests) only has to compile.
"""
from __future__ import annotations

import re

import pytest

pytest.importorskip("triton")


@pytest.fixture(scope="module")
def reports(compile_reports):
    # fast paths for both archs; the exact-fp32 path only for sm_90 and 3 hidden layers
    rows = compile_reports("tri3d.kernels.triplane_mlp",
                           "lambda n: (80, 90) if 'dot=ieee' not in n else ((90,) if 'nh3' in n else ())")
    return [r | {"fast": "dot=ieee" not in r["name"]} for r in rows]


def measured_spill(report: dict) -> bool:
    """The one spill allowed: the sm_90 backward with 3 hidden layers at its 16 x 4 default,
    measured faster on the GPU than the spill-free 16 x 8 (bench/RESULTS.md, 2026-11-26),
    with a bounded stack (248-336 bytes there)."""
    return (report["name"].startswith("bwd nh3") and report["arch"] == 90 and report["stack_bytes"] <= 512
            and report["local_bytes"] == 0)


def test_fast_paths_compile_without_spills_and_use_mma(reports, spill_allowance):
    fast = [r for r in reports if r["fast"]]
    assert {r["arch"] for r in fast} == {80, 90}
    assert len(fast) == 2 * 16  # (fwd + bwd) x 2 depths x 4 plane dtype / precision combos x 2 archs
    spills = [f"{r['name']} sm_{r['arch']}: STACK {r['stack_bytes']}" for r in fast
              if max(r["stack_bytes"], r["local_bytes"]) > spill_allowance and not measured_spill(r)]
    assert not spills, "register spills:\n" + "\n".join(spills)
    assert any(measured_spill(r) and r["stack_bytes"] for r in fast)  # the exception is still needed
    assert all(r["uses_mma"] for r in fast)
    assert all(0 < r["registers"] <= 255 for r in fast)


def test_shared_memory_fits_one_block(reports):
    """Triton requests its shared memory dynamically at launch: over the arch's per-block
    limit (A100 163 KB, H100 227 KB) the launch fails on the GPU. The old weight pass's
    default 3 pipelining stages asked for 183 KB on sm_80."""
    from tri3d.kernels.aot import MAX_SHARED_BYTES

    over = [f"{r['name']} sm_{r['arch']}: {r['dynamic_shared_bytes']} B" for r in reports
            if r["dynamic_shared_bytes"] > MAX_SHARED_BYTES[r["arch"]]]
    assert not over, "shared memory over the per-block limit:\n" + "\n".join(over)
    assert all(r["dynamic_shared_bytes"] > 0 for r in reports)  # read from the metadata


def test_sm90_backward_keeps_two_programs_per_sm(reports):
    """The sm_90 backward's 16 x 4 config was measured fastest because two independent
    4-warp programs per SM hide each other's latency (bench/RESULTS.md, 2026-11-26). Its
    weights now sit in shared memory (110 KB a program with tf32 dots): registers and
    shared memory must still let two be resident on an H100."""
    from tri3d.kernels.sass_cost import warps_per_sm
    from tri3d.kernels.triplane_mlp import BWD_CONFIG

    backward = [r for r in reports if r["fast"] and r["arch"] == 90 and r["name"].startswith("bwd ")]
    assert len(backward) == 8
    warps = BWD_CONFIG[90][3]["num_warps"]
    assert all(BWD_CONFIG[90][n]["num_warps"] == warps for n in (1, 3))
    few = [f"{r['name']}: {r['registers']} registers, {r['dynamic_shared_bytes']} B shared" for r in backward
           if warps_per_sm(r["registers"], r["dynamic_shared_bytes"], warps) < 2 * warps]
    assert not few, "fewer than two backward programs per SM:\n" + "\n".join(few)


def test_specs_are_what_the_jit_compiles():
    """The report compiles the launch's specialization: sizes divisible by 16 carry the
    hint, plane offsets fit i32 at EG3D sizes, and the backward is one launch doing both
    jobs, partitioned as launched."""
    from tri3d.kernels.triplane_mlp import BWD_CONFIG, BWD_PROGRAMS_PER_SM, IMAGENET_CALL, kernel_specs, program_partition

    specs = {s.name: s for s in kernel_specs()}
    assert not any(name.startswith("bwd-") for name in specs)  # no second backward pass
    bwd = specs["bwd nh3 planes=fp32 dot=tf32 sm_90"]
    assert bwd.archs == (90,) and specs["bwd nh3 planes=fp32 dot=tf32 sm_80"].archs == (80,)
    assert bwd.constexprs["WEIGHT_GRADS"] and bwd.constexprs["PLANE_GRADS"]
    config = BWD_CONFIG[90][3]
    n_blocks = -(-IMAGENET_CALL["points"] // config["block"])
    assert bwd.scalar_values["blocks_per_program"] == program_partition(n_blocks, BWD_PROGRAMS_PER_SM * 132)[0] > 1
    assert bwd.scalars["plane_size"] == "i32" and {"H", "W", "C", "plane_size"} <= set(bwd.divisible_by_16)
    assert "NOUT" not in bwd.divisible_by_16 and bwd.num_stages == config["num_stages"]
    assert bwd.num_warps == config["num_warps"] and bwd.constexprs["BLOCK"] == config["block"]


def test_no_narrow_16bit_wgmma(reports):
    """No Hopper wgmma with 16-bit operands and fewer than 64 columns (128 bytes a row): with
    Triton 3.6 the forward's bf16 m64n32k16 rgb product faulted with an illegal address on
    an H200 (bench/RESULTS.md, 2026-11-27); such products take tf32 operands. The 64-column
    bf16 products stay bf16."""
    sm90 = [r for r in reports if r["fast"] and r["arch"] == 90]
    shapes = {s for r in sm90 for s in r["wgmma_shapes"]}
    assert any(s.endswith(".bf16.bf16") for s in shapes), shapes  # the bf16 path still uses wgmma
    narrow = [f"{r['name']}: {s}" for r in sm90 for s in r["wgmma_shapes"]
              if re.search(r"\.(bf16|f16)\.", s) and int(re.match(r"m\d+n(\d+)k", s).group(1)) < 64]
    assert not narrow, "narrow 16-bit wgmma:\n" + "\n".join(narrow)


def test_exact_fp32_path_compiles(reports):
    exact = [r for r in reports if not r["fast"]]
    assert len(exact) == 2 and all(r["registers"] > 0 for r in exact)
    assert not any(r["uses_mma"] for r in exact)  # ieee fp32 dots run on FMA units


def test_res_usage_parser():
    from tri3d.kernels.aot import parse_res_usage

    line = "Function k:\nREG:168 STACK:8 SHARED:1024 LOCAL:0 CONSTANT[0]:560 TEXTURE:0 SURFACE:0 SAMPLER:0"
    assert parse_res_usage(line) == {"REG": 168, "STACK": 8, "SHARED": 1024, "LOCAL": 0}


def test_gradient_atomics_are_relaxed_no_membar(reports):
    """Plane-gradient scatter and weight reductions use `sem="relaxed"` atomics: plain RED
    instructions, no MEMBAR (acq_rel puts a full-GPU fence before each of them)."""
    backward = [r for r in reports if r["name"].startswith("bwd ")]
    assert backward and all(r["atomics"] > 0 for r in backward)
    assert all(r["membar"] == 0 for r in reports), [(r["name"], r["arch"], r["membar"]) for r in reports if r["membar"]]


def test_sass_counter():
    from tri3d.kernels.aot import count_sass

    sass = """
        /*0100*/                   MEMBAR.ALL.GPU ;                         /* 0x0000000000007992 */
        /*0108*/                   MEMBAR.ALL.CTA ;                         /* 0x0000000000007992 */
        /*0110*/               @P0 REDG.E.ADD.F32.FTZ.RN.STRONG.GPU desc[UR4][R2.64], R5 ;
        /*0120*/                   ATOMG.E.ADD.F32.FTZ.RN.STRONG.GPU PT, R3, desc[UR4][R2.64], R5 ;
        /*0130*/                   FFMA R1, R2, R3, R4 ;
    """
    assert count_sass(sass) == (1, 2)


def test_backward_config_follows_the_device_architecture(monkeypatch):
    """An A100 (and any pre-Hopper GPU) launches the sm_80 configs, which do not spill there;
    Hopper and later the sm_90 ones; the interpreter (CPU tensors) the sm_90 ones."""
    import torch

    from tri3d.kernels.triplane_mlp import BWD_CONFIG, bwd_config, config_arch

    for major, arch in ((7, 80), (8, 80), (9, 90), (10, 90)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, major=major: (major, 0))
        assert config_arch(torch.device("cuda", 1)) == arch
    assert config_arch(torch.device("cpu")) == 90
    assert bwd_config(3, 80) == BWD_CONFIG[80][3] != BWD_CONFIG[90][3]


CAPPED_SCRIPT = r"""
import json
from dataclasses import asdict
from tri3d.kernels.aot import compile_kernel
from tri3d.kernels.triplane_mlp import IMAGENET_CALL, bwd_config, launch_specs
rows = []
for cap in (None, 96):
    bwd = dict(bwd_config(1, 90)) | ({} if cap is None else {"maxnreg": cap})
    spec = [s for s in launch_specs(**IMAGENET_CALL, n_hidden=1, precision="bf16", plane_dtype="bf16", bwd=bwd)
            if s.name.startswith("bwd")][0]
    rows.append(asdict(compile_kernel(spec, 90)) | {"maxnreg": spec.maxnreg})
print(json.dumps(rows))
"""


def test_register_cap_reaches_the_compiler():
    """A backward launch config's ``maxnreg`` (swept by bench/tune_triplane.py, reported by
    bench/sass_report.py --maxnreg) is compiled in: the 1-layer bf16 backward takes 210
    registers uncapped, at most 96 capped (spilling the rest)."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", CAPPED_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    free, capped = json.loads(out.stdout)
    assert free["maxnreg"] is None and capped["maxnreg"] == 96
    assert free["registers"] > 96 >= capped["registers"] > 0
    assert capped["stack_bytes"] > free["stack_bytes"]  # what did not fit went to local memory
