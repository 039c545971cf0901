"""``tri3d doctor``: what will run on this machine, and whether it is right here.

Prints the versions that matter (Python, torch, triton, CUDA, the native extension,
cupy), which implementation ``impl="auto"`` picks for every op and why the others are
out, then runs every available fused / native path once at a small size against its
reference on the chosen device (forward and gradients, under DESIGN.md's tolerance rule:
error <= max(2 x the reference's own error in the same precision, floor), both measured
against an fp64 reference) and times fused against reference at a medium size. Returns
False when any available path disagrees with its reference.
"""
from __future__ import annotations

import importlib.util
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO

import torch

from tri3d import _backend
from tri3d.ops import bias_lrelu, composite, modulated_conv2d, triplane_decode
from tri3d.ops._dispatch import always, resolve_impl, triton_auto_unavailable, triton_unavailable
from tri3d.ops import importance_depths, merge_samples
from tri3d.testing import FLOORS, assert_fused_close

TIMING_REPEATS = 7  # timed calls per path, alternating between paths (the median is shown), after a warm-up


@dataclass
class Case:
    """One check's inputs on a device, made once and reused by every run of every path.
    ``cotangents`` are drawn at the first run from the outputs' shapes (fp64 on the CPU with
    a fixed seed, then cast), so a case on any device and dtype gets the same numbers."""
    inputs: dict[str, object]  # the op's arguments; tensors that take gradients require grad
    wrt: list[torch.Tensor]  # what the gradients are taken with respect to
    cotangents: list[torch.Tensor] | None = None


@dataclass
class OpCheck:
    name: str  # the public op
    paths: dict[str, Callable[[torch.device], "str | None"]]  # fused / native paths, probed for explicit use
    auto_paths: dict[str, Callable[[torch.device], "str | None"]]  # what impl="auto" considers
    make: Callable[[torch.device, torch.dtype, int], Case]  # (device, dtype, size) -> inputs
    call: Callable[[str, Case], tuple[torch.Tensor, ...]]  # (impl, case) -> the op's outputs


def run_case(check: OpCheck, impl: str, case: Case) -> list[torch.Tensor]:
    """The op's outputs through ``impl`` and, for its differentiable outputs, the gradients
    of ``sum(cotangent * output)`` with respect to ``case.wrt``."""
    outs = check.call(impl, case)
    if not case.wrt:
        return list(outs)
    if case.cotangents is None:
        g = torch.Generator().manual_seed(1)
        case.cotangents = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.device, o.dtype)
                           for o in outs]
    grads = torch.autograd.grad(outs, case.wrt, case.cotangents)
    return [*outs, *grads]


def _rays(size: int, device, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    B, R, S, C = 2, 7 * size, 13, 5
    sigma = torch.randn(B, R, S, 1, generator=g, dtype=torch.float64) * 3
    rgb = torch.rand(B, R, S, C, generator=g, dtype=torch.float64)
    depths = torch.sort(2 + torch.rand(B, R, S, 1, generator=g, dtype=torch.float64), dim=2).values
    return [t.to(device, dtype) for t in (sigma, rgb, depths)]


def _make_composite(device, dtype, size) -> Case:
    sigma, rgb, depths = _rays(size, device, dtype)
    sigma.requires_grad_(), rgb.requires_grad_()
    return Case(dict(sigma=sigma, rgb=rgb, depths=depths), [sigma, rgb])


def _make_importance(device, dtype, size) -> Case:
    _, _, depths = _rays(size, device, dtype)
    weights = torch.rand(*depths.shape[:2], depths.shape[2] - 1, 1, generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64).to(device, dtype)
    return Case(dict(depths=depths, weights=weights), [])


def _make_merge(device, dtype, size) -> Case:
    sigma, rgb, depths = _rays(size, device, dtype)
    fine = 2 + torch.rand(*depths.shape[:2], 6, 1, generator=torch.Generator().manual_seed(3),
                          dtype=torch.float64).to(device, dtype)
    return Case(dict(depths=depths, sigma=sigma, rgb=rgb, fine=fine), [])


def _make_triplane(device, dtype, size) -> Case:
    from tri3d.models import TriplaneDecoder

    g = torch.Generator().manual_seed(4)
    planes = torch.randn(2, 3, 12, 9, 9, generator=g, dtype=torch.float64).to(device, dtype).requires_grad_()
    xyz = (torch.rand(2, 37 * size, 3, generator=g, dtype=torch.float64) * 2 - 1).to(device, dtype)
    torch.manual_seed(5)
    decoder = TriplaneDecoder(in_features=12, hidden=24, n_hidden=3, out_features=7).to(device, dtype)
    return Case(dict(planes=planes, xyz=xyz, decoder=decoder), [planes, *decoder.parameters()])


def _make_modconv(device, dtype, size) -> Case:
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 19, 5 * size, 7, generator=g, dtype=torch.float64).to(device, dtype).requires_grad_()
    weight = torch.randn(21, 19, 3, 3, generator=g, dtype=torch.float64).to(device, dtype).requires_grad_()
    styles = (torch.randn(2, 19, generator=g, dtype=torch.float64) * 0.5 + 1).to(device, dtype).requires_grad_()
    bias = torch.randn(21, generator=g, dtype=torch.float64).to(device, dtype).requires_grad_()
    return Case(dict(x=x, weight=weight, styles=styles, bias=bias), [x, weight, styles, bias])


def _make_bias_act(device, dtype, size) -> Case:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 21, 5 * size, 7, generator=g, dtype=torch.float64).to(device, dtype)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()  # the CPU convolutions' layout
    bias = torch.randn(21, generator=g, dtype=torch.float64).to(device, dtype).requires_grad_()
    return Case(dict(x=x, bias=bias), [x, bias])


def _exact(impl: str) -> dict[str, str]:
    """Exact fp32 dots on the Triton paths, so they are held to the fp32 reference."""
    return {"precision": "ieee"} if impl == "triton" else {}


def _call_composite(impl: str, case: Case) -> tuple[torch.Tensor, ...]:
    i = case.inputs
    return tuple(composite(i["sigma"], i["rgb"], i["depths"], impl=impl))


def _call_importance(impl: str, case: Case) -> tuple[torch.Tensor, ...]:
    i = case.inputs
    return (importance_depths(i["depths"], i["weights"], 9, deterministic=True, impl=impl),)


def _call_merge(impl: str, case: Case) -> tuple[torch.Tensor, ...]:
    i = case.inputs
    return tuple(merge_samples(i["depths"], i["sigma"], i["rgb"], i["fine"], i["sigma"][:, :, :6],
                               i["rgb"][:, :, :6], impl=impl))


def _call_triplane(impl: str, case: Case) -> tuple[torch.Tensor, ...]:
    i = case.inputs
    return tuple(triplane_decode(i["planes"], i["xyz"], i["decoder"], impl=impl, **_exact(impl)))


def _call_modconv(impl: str, case: Case) -> tuple[torch.Tensor, ...]:
    i = case.inputs
    return (modulated_conv2d(i["x"], i["weight"], i["styles"], bias=i["bias"], activation="lrelu", clamp=2.0, impl=impl,
                             **_exact(impl)),)


def _call_bias_act(impl: str, case: Case) -> tuple[torch.Tensor, ...]:
    i = case.inputs
    return (bias_lrelu(i["x"], i["bias"], clamp=1.5, impl=impl),)


def _modconv_auto(device: torch.device) -> str | None:
    """The auto probe for a 3x3 layer on fp32 activations (the default training precision)."""
    from tri3d.ops.modconv import _triton_reason

    x, w = torch.empty(1, 8, 4, 4, device=device), torch.empty(8, 8, 3, 3, device=device)
    return _triton_reason(x, w, 1, 1, explicit=False)(device)


NATIVE = {"cuda": _backend.cuda_unavailable, "cpp": _backend.cpp_unavailable}
CHECKS = [
    OpCheck("composite", NATIVE, NATIVE, _make_composite, _call_composite),
    OpCheck("importance_depths", NATIVE, NATIVE, _make_importance, _call_importance),
    OpCheck("merge_samples", NATIVE, NATIVE, _make_merge, _call_merge),
    OpCheck("triplane_decode", {"triton": triton_unavailable, "cpp": _backend.cpp_unavailable},
            {"triton": triton_auto_unavailable, "cpp": _backend.cpp_unavailable}, _make_triplane, _call_triplane),
    OpCheck("modulated_conv2d", {"triton": triton_unavailable, **NATIVE}, {"triton": _modconv_auto, **NATIVE},
            _make_modconv, _call_modconv),
    OpCheck("bias_lrelu", NATIVE, NATIVE, _make_bias_act, _call_bias_act),
]


def versions() -> list[str]:
    lines = [f"python {platform.python_version()} on {platform.platform()}",
             f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'})"]
    triton = importlib.util.find_spec("triton")
    lines.append(f"triton {__import__('triton').__version__}" if triton else "triton: not installed")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            cap = torch.cuda.get_device_capability(i)
            lines.append(f"cuda:{i} {torch.cuda.get_device_name(i)} (sm_{cap[0]}{cap[1]})")
    else:
        lines.append("CUDA: no usable GPU (torch.cuda.is_available() is False)")
    module, reason = _backend._load()
    if module is None:
        lines.append(f"tri3d._C: {reason}")
    elif not module.with_cuda:
        lines.append("tri3d._C: built, without CUDA kernels (no nvcc at install time)")
    else:
        runtime, driver, devices = module.cuda_versions()
        problem = _backend.cuda_runtime_problem()
        lines.append(f"tri3d._C: built with CUDA kernels (runtime {runtime // 1000}.{runtime % 1000 // 10}; driver "
                     f"supports {driver // 1000}.{driver % 1000 // 10}; {devices} device(s))"
                     + (f": they cannot run here ({problem})" if problem else ""))
    lines.append(f"cupy {__import__('cupy').__version__}" if importlib.util.find_spec("cupy") else "cupy: not installed")
    from tri3d import _nvrtc

    jit = _nvrtc.unavailable()
    lines.append(f"NVRTC path (CUDA kernels compiled at run time): {f'cannot run: {jit}' if jit else 'ready'}")
    return lines


def _paired_median_ms(fns: list[Callable[[], object]], device: torch.device) -> tuple[list[float], str]:
    """Median milliseconds of each of ``fns`` after one warm-up run of each, and the timer.
    The calls alternate (``fns[0]``, ``fns[1]``, ..., then again), so a machine whose speed
    drifts, or another process that takes the cores for a while, slows every path alike
    instead of whichever happened to run then. CUDA events on the device's current stream
    (GPU time, no host sync inside a run), else the wall clock."""
    for fn in fns:
        fn()
    if device.type == "cuda":
        with torch.cuda.device(device):
            pairs = [[(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in fns]
                     for _ in range(TIMING_REPEATS)]
            for events in pairs:
                for fn, (start, end) in zip(fns, events):
                    start.record()
                    fn()
                    end.record()
            torch.cuda.synchronize(device)
            return [statistics.median(events[i][0].elapsed_time(events[i][1]) for events in pairs)
                    for i in range(len(fns))], "CUDA events"
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(TIMING_REPEATS):
        for fn, samples in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1000)
    return [statistics.median(samples) for samples in times], "wall clock"


def run_doctor(device: torch.device, out: TextIO = sys.stdout, timing_size: int = 64) -> bool:
    """Print the report for ``device``; True when every available path matches its reference."""
    for line in versions():
        print(line, file=out)
    print(f"\nops on {device}:", file=out)
    ok = True
    for check in CHECKS:
        auto = resolve_impl(check.name, "auto", device, {**check.auto_paths, "ref": always})
        why = "; ".join(f"{name}: {reason}" for name, probe in check.auto_paths.items()
                        if (reason := probe(device)) is not None)
        print(f"  {check.name}: auto -> {auto}" + (f" ({why})" if why else ""), file=out)
        for impl, probe in check.paths.items():
            reason = probe(device)
            if reason is not None:
                print(f"    {impl}: not available here ({reason})", file=out)
                continue
            try:
                case = check.make(device, torch.float32, 1)
                fused = run_case(check, impl, case)
                same = run_case(check, "ref", case)
                ref64 = run_case(check, "ref", check.make(torch.device("cpu"), torch.float64, 1))
                for k, (f, r, r64) in enumerate(zip(fused, same, ref64)):
                    if f.is_floating_point():
                        assert_fused_close(f.cpu().float(), r.cpu().float(), r64, FLOORS["fp32"], f"output {k}")
                    elif not torch.equal(f.cpu(), r64.cpu()):
                        raise AssertionError(f"output {k} differs from the reference")
            except (AssertionError, RuntimeError, ValueError) as err:
                ok = False
                print(f"    {impl}: FAIL against ref: {err}", file=out)
                continue
            case = check.make(device, torch.float32, timing_size)  # inputs made once: only the op is timed
            (t_fused, t_ref), timer = _paired_median_ms(
                [lambda: run_case(check, impl, case), lambda: run_case(check, "ref", case)], device)
            print(f"    {impl}: matches ref (fp32, forward and gradients); {t_fused:.2f} ms vs ref {t_ref:.2f} ms "
                  f"at the medium size (x{t_ref / max(t_fused, 1e-9):.2f}, {timer}, median of {TIMING_REPEATS}, "
                  "calls alternating)", file=out)
    print("\nall available paths match their references" if ok else "\nSOME PATHS DISAGREE WITH THEIR REFERENCES",
          file=out)
    return ok
