"""The CUDA sources compile for sm_80 and sm_90 without spills (needs nvcc, not a GPU)."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

NVCC = shutil.which("nvcc")


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
def test_cuda_kernels_compile_for_sm80_sm90_without_spills():
    path = Path(__file__).parents[2] / "csrc" / "nvcc_report.py"
    spec = importlib.util.spec_from_file_location("nvcc_report", path)
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    rows = report.compile_report(NVCC)
    kernels = {r["kernel"] for r in rows}
    assert {"composite_forward_kernel<float>", "composite_backward_kernel<float>", "importance_kernel<float>",
            "merge_sorted_kernel<float>"} <= kernels
    assert {(k, a) for k in kernels for a in (80, 90)} == {(r["kernel"], r["arch"]) for r in rows}
    assert all(r["spill_stores"] == 0 and r["spill_loads"] == 0 for r in rows), rows
