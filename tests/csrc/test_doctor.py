"""``tri3d doctor``: reports every op's choice and checks every available native path
against its reference; a broken path makes it fail."""
from __future__ import annotations

import importlib
import io

import pytest
import torch

from tri3d.doctor import run_doctor


def test_doctor_passes_here_and_names_every_op(native_ext):
    out = io.StringIO()
    assert run_doctor(torch.device("cpu"), out=out, timing_size=2)
    text = out.getvalue()
    for op in ("composite", "importance_depths", "merge_samples", "triplane_decode", "modulated_conv2d", "bias_lrelu"):
        assert f"  {op}: auto -> cpp" in text
    assert text.count("cpp: matches ref") == 6 and "all available paths match their references" in text


def test_doctor_fails_on_a_path_that_disagrees_with_its_reference(native_ext, monkeypatch):
    module = importlib.import_module("tri3d.ops.composite")
    real = module.composite_native_forward

    def off_by_a_percent(sigma, rgb, depths):
        out_rgb, out_depth, out_w = real(sigma, rgb, depths)
        return out_rgb * 1.01, out_depth, out_w

    monkeypatch.setattr(module, "composite_native_forward", off_by_a_percent)
    out = io.StringIO()
    assert not run_doctor(torch.device("cpu"), out=out, timing_size=2)
    assert "cpp: FAIL against ref: output 0: fused error" in out.getvalue()
    assert "SOME PATHS DISAGREE" in out.getvalue()


def test_doctor_times_the_op_on_inputs_made_once(native_ext, monkeypatch):
    """Each available path's inputs are made three times: its check on the device, the fp64
    reference, and once for all the timed runs, so the timings are the op's and not the
    host drawing its data (on a GPU that was most of the doctor's first numbers)."""
    import dataclasses

    import tri3d.doctor as doctor

    made = []

    def counting(check):
        return dataclasses.replace(check, make=lambda *args: made.append((check.name, args[2])) or check.make(*args))

    monkeypatch.setattr(doctor, "CHECKS", [counting(check) for check in doctor.CHECKS])
    cpu = torch.device("cpu")
    assert run_doctor(cpu, out=io.StringIO(), timing_size=2)
    available = {check.name: sum(probe(cpu) is None for probe in check.paths.values()) for check in doctor.CHECKS}
    # cpp for the renderer's ops; triton only under the interpreter (not on a GPU machine)
    assert sum(available.values()) >= 3
    for check in doctor.CHECKS:
        sizes = sorted(size for name, size in made if name == check.name)
        assert sizes == sorted([1, 1, 2] * available[check.name]), check.name


def test_doctor_alternates_the_timed_calls_so_drift_slows_both_paths(monkeypatch):
    """A machine that slows down while the doctor times (here a clock whose calls grow 1 ms
    longer every round) must not make either path look slower: the calls alternate, so
    each round of the fused path and of the reference sees the same slowdown."""
    import tri3d.doctor as doctor

    now, calls = [0.0], []

    def path(name, ms):
        def run():
            calls.append(name)
            rounds = sum(c == name for c in calls) - 1  # the first call is the warm-up
            now[0] += (ms + rounds) / 1000
        return run

    monkeypatch.setattr(doctor.time, "perf_counter", lambda: now[0])
    (fused, ref), timer = doctor._paired_median_ms([path("fused", 1.0), path("ref", 3.0)], torch.device("cpu"))
    assert calls == ["fused", "ref"] * (1 + doctor.TIMING_REPEATS)
    median_round = (doctor.TIMING_REPEATS + 1) // 2
    assert timer == "wall clock"
    assert fused == pytest.approx(1.0 + median_round) and ref == pytest.approx(3.0 + median_round)
