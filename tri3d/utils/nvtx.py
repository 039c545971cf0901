"""NVTX ranges for profilers (Nsight Systems); a no-op when the `nvtx` package is absent."""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
from typing import Iterator


@functools.lru_cache(maxsize=1)
def _nvtx():
    return importlib.import_module("nvtx") if importlib.util.find_spec("nvtx") else None


@contextlib.contextmanager
def nvtx_range(name: str) -> Iterator[None]:
    """Mark a named range on the CUDA timeline when `nvtx` is installed."""
    nvtx = _nvtx()
    if nvtx is None:
        yield
        return
    with nvtx.annotate(name, domain="tri3d"):
        yield
