"""Lazy, CPU-safe loading of the native extension ``tri3d._C``.

Nothing is imported until a native path is first asked for; when the extension is
missing (not built, no compiler at install time) the reference paths keep working and
one warning says why.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Iterator

import torch

if TYPE_CHECKING:
    from tri3d._nvrtc import NvrtcKernels


@functools.lru_cache(maxsize=1)
def _load() -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module("tri3d._C"), None
    except ImportError as err:
        reason = f"the native extension tri3d._C is not available ({err}); reinstall with `pip install -e .` and a C++ compiler + CMake"
        warnings.warn(f"tri3d: {reason}; falling back to reference paths", stacklevel=3)
        return None, reason


def native() -> ModuleType:
    """The loaded extension; raises ``RuntimeError`` saying why when it is missing."""
    module, reason = _load()
    if module is None:
        raise RuntimeError(reason)
    return module


def cpp_unavailable(device: torch.device) -> str | None:
    """Availability probe of the C++ (CPU) path."""
    if device.type != "cpu":
        return "the C++ path runs on CPU tensors"
    return _load()[1]


def prebuilt_cuda_unavailable() -> str | None:
    """Why the prebuilt CUDA kernels of ``tri3d._C`` cannot run here (``None`` when they can)."""
    module, reason = _load()
    if module is None:
        return reason
    if not module.with_cuda:
        return "tri3d._C was built without CUDA (no nvcc at install time); reinstall on a machine with nvcc"
    return cuda_runtime_problem()


def cuda_unavailable(device: torch.device) -> str | None:
    """Availability probe of the CUDA path: the prebuilt kernels, else the same kernels
    compiled at run time by NVRTC (``tri3d._nvrtc``, needs cupy)."""
    if device.type != "cuda":
        return "the CUDA path runs on CUDA tensors"
    prebuilt = prebuilt_cuda_unavailable()
    if prebuilt is None:
        return None
    from tri3d import _nvrtc

    jit = _nvrtc.unavailable()
    if jit is None:
        return None
    return f"{prebuilt}; and the NVRTC path cannot run either: {jit}"


def kernels_for(device: torch.device) -> ModuleType | NvrtcKernels:
    """The entry points that run the native ops on ``device`` (all take the extension's
    arguments): ``tri3d._C`` on the CPU and for CUDA when its prebuilt kernels can run,
    else the NVRTC-compiled kernels. Call after the op's probe said yes."""
    if device.type == "cuda" and prebuilt_cuda_unavailable() is not None:
        from tri3d import _nvrtc

        return _nvrtc.kernels()
    return native()


def _cuda_version(v: int) -> str:
    return f"{v // 1000}.{v % 1000 // 10}"


@functools.lru_cache(maxsize=1)
def cuda_runtime_problem() -> str | None:
    """Why the prebuilt CUDA kernels cannot run on this machine (``None`` when they can),
    from the extension's own runtime and the driver: the runtime is linked statically, so
    a driver older than the build's toolkit fails every launch. Asked once per process;
    the first answer that is a problem is also one warning, and ``impl="auto"`` moves on."""
    runtime, driver, devices = native().cuda_versions()
    if driver == 0:
        reason = "no CUDA driver is installed"
    elif driver < runtime:
        reason = (f"tri3d._C was built with CUDA {_cuda_version(runtime)} but this driver supports CUDA "
                  f"{_cuda_version(driver)} at most: update the driver, or rebuild tri3d here with a CUDA "
                  f"<= {_cuda_version(driver)} toolkit (pip install -e .)")
    elif devices == 0:
        reason = "the CUDA driver sees no device"
    else:
        return None
    warnings.warn(f"tri3d: the prebuilt CUDA kernels cannot run ({reason}); the CUDA path uses the kernels "
                  "compiled at run time by NVRTC when cupy is installed, else impl='auto' uses the other paths",
                  stacklevel=2)
    return reason


@contextlib.contextmanager
def on_device(device: torch.device) -> Iterator[None]:
    """Make ``device`` CUDA's current device while a kernel is launched (restored after).

    Triton launches on the current device and on its current stream, and the extension's
    kernels run in the thread's current context: without this, a tensor on ``cuda:1`` in a
    process whose current device is 0 would be read by kernels on device 0. A no-op for
    CPU tensors."""
    if device.type == "cuda":
        with torch.cuda.device(device):
            yield
    else:
        yield


def device_name(t: torch.Tensor) -> str:
    return "cuda" if t.is_cuda else "cpu"


def stream_handle(t: torch.Tensor) -> int:
    """The current CUDA stream of ``t``'s device as an integer (0 on CPU)."""
    return torch.cuda.current_stream(t.device).cuda_stream if t.is_cuda else 0


NATIVE_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def native_pointers(op: str, device: torch.device,
                    args: "list[tuple[str, torch.Tensor | None, tuple[int, ...], torch.dtype]]") -> list[int]:
    """The raw pointers of a native call's tensors, after checking everything the C++
    side cannot: each tensor is on ``device``, has the dtype and exact shape the sizes
    passed beside it promise, and is contiguous (the kernels index it densely). ``None``
    (an optional input) gives a null pointer. The extension has no other caller.

    Raises:
        ValueError: naming ``op`` and the argument.
    """
    pointers = []
    for name, t, shape, dtype in args:
        if t is None:
            pointers.append(0)
            continue
        if t.device != device:
            raise ValueError(f"{op}: {name} is on {t.device}, the other inputs on {device}")
        if t.dtype != dtype:
            raise ValueError(f"{op}: {name} must be {dtype} for the native call, got {t.dtype}")
        if tuple(t.shape) != tuple(shape):
            raise ValueError(f"{op}: {name} must have shape {list(shape)} for the native call, got {list(t.shape)}")
        if not t.is_contiguous():
            raise ValueError(f"{op}: {name} must be contiguous for the native call")
        pointers.append(t.data_ptr())
    return pointers
