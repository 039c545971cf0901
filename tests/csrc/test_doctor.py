"""``tri3d doctor``: reports every op's choice and checks every available native path
against its reference; a broken path makes it fail."""
from __future__ import annotations

import importlib
import io

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
