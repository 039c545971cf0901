"""The no-build CUDA path: the kernels of ``csrc/kernels.cuh`` compiled at run time by
NVRTC (through cupy) for the GPU actually present, and launched on PyTorch's current
stream with the torch tensors' own device pointers (zero-copy).

``impl="cuda"`` runs the prebuilt extension ``tri3d._C`` when it can (built with nvcc,
and its statically linked runtime is not newer than the driver); otherwise these
kernels (``tri3d._backend.cuda_kernels``). The entry points take the same arguments as
the extension's, so the ops call either one the same way. Nothing is imported or
compiled until a launch needs it; a module is compiled once per process and GPU
architecture (cupy also caches it on disk, keyed by source, options and architecture).

``compile_ptx`` compiles the same source with the same options through NVRTC's C API
(``libnvrtc`` from the ``nvidia-cuda-nvrtc-cu12`` wheel, or cupy's), without a GPU:
CI checks with it that every kernel compiles for sm_80 and sm_90.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import importlib.util
import os
import re
from pathlib import Path
from typing import Sequence

SOURCE_DIR = Path(__file__).resolve().parent.parent / "csrc"  # a source checkout (pip install -e .)
ENTRY_SOURCE = '#include "kernels.cuh"\n'
KERNEL_NAMES = ("composite_forward_kernel", "composite_backward_kernel", "importance_kernel", "merge_sorted_kernel",
                "bias_act_forward_kernel", "bias_act_backward_kernel")
C_TYPES = {"float32": "float", "float64": "double"}  # the extension's dtype names -> template arguments
LAUNCH_CONSTANTS = ("kWarpsPerBlock", "kImportanceThreads", "kMergeThreads", "kMergeMaxFine", "kBiasActThreads",
                    "kMaxGridY", "kBiasActLinear", "kBiasActClamped")
CONSTANT_HEADERS = ("kernels.cuh", "importance.h")  # where LAUNCH_CONSTANTS are defined


def nvrtc_options() -> tuple[str, ...]:
    """The NVRTC options of every compile (the architecture is added per GPU)."""
    return ("--std=c++17", f"--include-path={SOURCE_DIR}")


def name_expression(kernel: str, dtype: str) -> str:
    """The C++ name of one instantiation (``dtype``: "float32" or "float64")."""
    return f"tri3d::kernels::{kernel}<{C_TYPES[dtype]}>"


def name_expressions() -> list[str]:
    return [name_expression(k, d) for k in KERNEL_NAMES for d in C_TYPES]


@functools.lru_cache(maxsize=1)
def launch_constants() -> dict[str, int]:
    """The launch shapes and limits defined once in the kernel headers
    (``constexpr int NAME = N;`` in ``kernels.cuh`` or ``importance.h``)."""
    text = "\n".join((SOURCE_DIR / header).read_text() for header in CONSTANT_HEADERS)
    found = {}
    for name in LAUNCH_CONSTANTS:
        match = re.search(rf"constexpr int {name} = (\d+);", text)
        if match is None:
            raise RuntimeError(f"{SOURCE_DIR}: no 'constexpr int {name} = N;' in {' or '.join(CONSTANT_HEADERS)}")
        found[name] = int(match.group(1))
    return found


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why the NVRTC path cannot run here (``None`` when it can). Asked once per process."""
    if not (SOURCE_DIR / "kernels.cuh").is_file():
        return (f"the CUDA sources are not beside the package ({SOURCE_DIR / 'kernels.cuh'} is missing): install "
                "tri3d from a source checkout (pip install -e .)")
    if importlib.util.find_spec("cupy") is None:
        return 'cupy is not installed (pip install -e ".[cuda]")'
    try:
        import cupy

        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # cupy raises its own CUDA error types (no driver, wrong wheel)
        return f"cupy cannot use the GPU ({type(err).__name__}: {err})"
    if devices == 0:
        return "cupy sees no CUDA device"
    return None


@functools.lru_cache(maxsize=None)
def _module(device_index: int, arch: str):  # arch keys the cache: one compile per architecture and device
    import cupy

    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(code=ENTRY_SOURCE, options=nvrtc_options(), name_expressions=name_expressions(),
                                backend="nvrtc")
        module.compile()
    return module


def _args(named: Sequence[tuple[str, str, float]], dtype: str) -> tuple:
    """Kernel arguments by value: ``(parameter name, kind, value)`` in the kernel's
    parameter order (a test compares the names with ``kernels.cuh``); kind "i64", "i32",
    "ptr", or "real" (the kernel's ``T``: ``dtype``)."""
    import numpy as np

    types = {"i64": np.int64, "i32": np.int32, "ptr": np.uint64, "real": np.dtype(dtype).type}
    return tuple(types[kind](v) for _, kind, v in named)


class NvrtcKernels:
    """The extension's CUDA entry points (same arguments) on the NVRTC-compiled kernels."""

    def __init__(self, launch=None):
        self._launch_fn = launch or self._cupy_launch  # tests pass a recorder

    @staticmethod
    def _cupy_launch(kernel: str, dtype: str, grid: tuple[int, ...], block: int,
                     named: Sequence[tuple[str, str, float]], stream: int) -> None:
        import cupy
        import torch

        index = torch.cuda.current_device()  # the caller runs under the tensors' device (_backend.on_device)
        major, minor = torch.cuda.get_device_capability(index)
        function = _module(index, f"sm_{major}{minor}").get_function(name_expression(kernel, dtype))
        with cupy.cuda.Device(index):
            function(grid, (block,), _args(named, dtype), stream=cupy.cuda.ExternalStream(stream, index))

    def _launch(self, device: str, kernel: str, dtype: str, grid: int | tuple[int, int], block: int,
                named: Sequence[tuple[str, str, float]], stream: int) -> None:
        """Launch ``kernel`` on ``grid`` blocks (x, or (x, y)) of ``block`` threads; no
        launch when the grid is empty."""
        if device != "cuda":
            raise ValueError(f"tri3d NVRTC kernels run on CUDA tensors, not {device}")
        if dtype not in C_TYPES:
            raise ValueError(f"tri3d NVRTC kernels: dtype must be float32 or float64, got {dtype}")
        grid = (grid,) if isinstance(grid, int) else tuple(grid)
        if min(grid) > 0:
            self._launch_fn(kernel, dtype, grid, block, named, stream)

    def composite_forward(self, device: str, dtype: str, M: int, S: int, C: int, sigma: int, rgb: int, depth: int,
                          out_rgb: int, out_depth: int, out_weights: int, stream: int) -> None:
        warps = launch_constants()["kWarpsPerBlock"]
        self._launch(device, "composite_forward_kernel", dtype, -(-M // warps), 32 * warps, [
            ("M", "i64", M), ("S", "i64", S), ("C", "i64", C), ("sigma", "ptr", sigma), ("rgb", "ptr", rgb),
            ("depth", "ptr", depth), ("out_rgb", "ptr", out_rgb), ("out_depth", "ptr", out_depth),
            ("out_weights", "ptr", out_weights)], stream)

    def composite_backward(self, device: str, dtype: str, M: int, S: int, C: int, sigma: int, rgb: int, depth: int,
                           grad_rgb_out: int, grad_depth_out: int, grad_weights_out: int, grad_sigma: int,
                           grad_rgb: int, stream: int) -> None:
        warps = launch_constants()["kWarpsPerBlock"]
        self._launch(device, "composite_backward_kernel", dtype, -(-M // warps), 32 * warps, [
            ("M", "i64", M), ("S", "i64", S), ("C", "i64", C), ("sigma", "ptr", sigma), ("rgb", "ptr", rgb),
            ("depth", "ptr", depth), ("grad_rgb_out", "ptr", grad_rgb_out),
            ("grad_depth_out", "ptr", grad_depth_out), ("grad_weights_out", "ptr", grad_weights_out),
            ("grad_sigma", "ptr", grad_sigma), ("grad_rgb", "ptr", grad_rgb)], stream)

    def importance(self, device: str, dtype: str, M: int, S: int, n: int, depth: int, weights: int, u: int,
                   out_depths: int, stream: int) -> None:
        threads = launch_constants()["kImportanceThreads"]
        self._launch(device, "importance_kernel", dtype, -(-(M * n) // threads), threads, [
            ("M", "i64", M), ("S", "i64", S), ("n", "i64", n), ("depth", "ptr", depth), ("weights", "ptr", weights),
            ("u", "ptr", u), ("out_depths", "ptr", out_depths)], stream)

    def merge_sorted(self, device: str, dtype: str, M: int, S: int, n: int, coarse: int, fine: int, out_depth: int,
                     order: int, stream: int) -> None:
        if n > launch_constants()["kMergeMaxFine"]:  # the kernel sorts them in a fixed-size local array
            raise ValueError(f"merge_sorted: at most {launch_constants()['kMergeMaxFine']} fine samples per ray, "
                             f"got n={n}")
        threads = launch_constants()["kMergeThreads"]
        self._launch(device, "merge_sorted_kernel", dtype, -(-M // threads), threads, [
            ("M", "i64", M), ("S", "i64", S), ("n", "i64", n), ("coarse", "ptr", coarse), ("fine", "ptr", fine),
            ("out_depth", "ptr", out_depth), ("order", "ptr", order)], stream)

    @staticmethod
    def _bias_act_scalars(alpha: float, gain: float, clamp: float, linear: bool,
                          clamped: bool) -> list[tuple[str, str, float]]:
        if not (gain > 0 and alpha >= 0 and (not clamped or clamp > 0)):  # as the extension checks
            raise ValueError("tri3d NVRTC kernels: bias_act needs gain > 0, alpha >= 0 and clamp > 0")
        c = launch_constants()
        flags = (c["kBiasActLinear"] if linear else 0) | (c["kBiasActClamped"] if clamped else 0)
        return [("alpha", "real", alpha), ("gain", "real", gain), ("clamp", "real", clamp), ("flags", "i32", flags)]

    def bias_act_forward(self, device: str, dtype: str, outer: int, C: int, inner: int, x: int, bias: int, alpha: float,
                         gain: float, clamp: float, linear: bool, clamped: bool, y: int, stream: int) -> None:
        c = launch_constants()
        rows, cols = (outer * C, inner) if inner != 1 else (outer, C)  # as the kernel sees the rows
        grid = (-(-cols // c["kBiasActThreads"]), min(rows, c["kMaxGridY"]))
        self._launch(device, "bias_act_forward_kernel", dtype, grid, c["kBiasActThreads"], [
            ("outer", "i64", outer), ("C", "i64", C), ("inner", "i64", inner), ("x", "ptr", x), ("bias", "ptr", bias),
            *self._bias_act_scalars(alpha, gain, clamp, linear, clamped), ("y", "ptr", y)], stream)

    def bias_act_backward(self, device: str, dtype: str, n: int, y: int, grad_y: int, alpha: float, gain: float,
                          clamp: float, linear: bool, clamped: bool, grad_x: int, stream: int) -> None:
        threads = launch_constants()["kBiasActThreads"]
        self._launch(device, "bias_act_backward_kernel", dtype, min(-(-n // threads), 2**31 - 1), threads, [
            ("n", "i64", n), ("y", "ptr", y), ("grad_y", "ptr", grad_y),
            *self._bias_act_scalars(alpha, gain, clamp, linear, clamped), ("grad_x", "ptr", grad_x)], stream)


@functools.lru_cache(maxsize=1)
def kernels() -> NvrtcKernels:
    return NvrtcKernels()


# ---------------------------------------------------------------- compile check (no GPU)
def _libnvrtc_candidates() -> list[str]:
    found = []
    for package in ("nvidia.cuda_nvrtc", "nvidia.cu13"):  # the CUDA 12 and CUDA 13 NVRTC wheels
        try:
            spec = importlib.util.find_spec(package)
        except ModuleNotFoundError:
            continue
        for root in (spec.submodule_search_locations or []) if spec else []:
            found += sorted(glob.glob(os.path.join(root, "**", "libnvrtc.so*"), recursive=True))
    return [p for p in found if "builtins" not in os.path.basename(p) and ".alt." not in os.path.basename(p)]


@functools.lru_cache(maxsize=1)
def libnvrtc() -> ctypes.CDLL:
    """NVRTC's C library: from the ``nvidia-cuda-nvrtc-cu12`` wheel, else the system's.

    Raises:
        RuntimeError: no libnvrtc was found.
    """
    for path in [*_libnvrtc_candidates(), "libnvrtc.so"]:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    raise RuntimeError("libnvrtc not found: pip install nvidia-cuda-nvrtc-cu12 (or install a CUDA toolkit)")


def compile_ptx(arch: str) -> tuple[str, dict[str, str]]:
    """PTX of ``kernels.cuh`` for ``arch`` (e.g. "sm_90") with the runtime's options, and
    every name expression's lowered (mangled) name. Needs no GPU.

    Raises:
        RuntimeError: the compile failed; carries NVRTC's log.
    """
    lib = libnvrtc()
    match = re.fullmatch(r"sm_(\d+)", arch)
    if match is None:
        raise ValueError(f"arch must look like sm_90, got {arch!r}")

    def check(result: int, what: str) -> None:
        if result != 0:
            lib.nvrtcGetErrorString.restype = ctypes.c_char_p
            raise RuntimeError(f"NVRTC {what}: {lib.nvrtcGetErrorString(result).decode()}")

    program = ctypes.c_void_p()
    check(lib.nvrtcCreateProgram(ctypes.byref(program), ENTRY_SOURCE.encode(), b"tri3d_kernels.cu", 0, None, None),
          "create")
    try:
        names = name_expressions()
        for name in names:
            check(lib.nvrtcAddNameExpression(program, name.encode()), f"add {name}")
        options = [*nvrtc_options(), f"--gpu-architecture=compute_{match.group(1)}"]
        c_options = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
        result = lib.nvrtcCompileProgram(program, len(options), c_options)
        log_size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(program, ctypes.byref(log_size))
        log = ctypes.create_string_buffer(log_size.value)
        lib.nvrtcGetProgramLog(program, log)
        if result != 0:
            raise RuntimeError(f"NVRTC could not compile {SOURCE_DIR / 'kernels.cuh'} for {arch}:\n"
                               f"{log.value.decode(errors='replace')}")
        ptx_size = ctypes.c_size_t()
        check(lib.nvrtcGetPTXSize(program, ctypes.byref(ptx_size)), "PTX size")
        ptx = ctypes.create_string_buffer(ptx_size.value)
        check(lib.nvrtcGetPTX(program, ptx), "PTX")
        lowered = {}
        for name in names:
            out = ctypes.c_char_p()
            check(lib.nvrtcGetLoweredName(program, name.encode(), ctypes.byref(out)), f"lowered name of {name}")
            lowered[name] = out.value.decode()
        return ptx.value.decode(), lowered
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))
