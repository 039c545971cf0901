"""The dispatch rule shared by every op (DESIGN.md, "Dispatch rule").

Each op declares its implementations in preference order, each with an availability
probe that returns ``None`` when the path can run on a device, or a sentence saying what
is missing. ``impl="auto"`` takes the first available one; an explicit request for an
unavailable path raises with that sentence. ``TRI3D_IMPL=ref`` makes ``"auto"`` resolve
to the reference path everywhere (explicit requests still get what they name).
"""
from __future__ import annotations

import importlib.util
import os
from typing import Callable, Mapping

import torch

IMPLS = ("auto", "ref", "triton", "cuda", "cpp")
ENV_VAR = "TRI3D_IMPL"

Probe = Callable[[torch.device], "str | None"]

# Looked up once at import (this finds the package without importing it): a probe runs
# inside torch.compile's tracing, and torch 2.11's dynamo refuses to trace find_spec.
TRITON_INSTALLED = importlib.util.find_spec("triton") is not None
# Also once at import, since torch 2.4's dynamo cannot trace os.environ ("const method
# call bytes.decode"): set TRITON_INTERPRET before importing tri3d (Triton, too, reads it
# once, when the kernels are decorated).
TRITON_INTERPRETER = os.environ.get("TRITON_INTERPRET", "0") == "1"


def always(device: torch.device) -> str | None:
    """Availability probe of a path that runs everywhere (the reference)."""
    return None


def forced_impl() -> str:
    """The value of ``TRI3D_IMPL`` ("auto" when unset); raises on an unknown value."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in ("auto", "ref"):
        raise ValueError(f"{ENV_VAR} must be 'auto' or 'ref', got {value!r}")
    return value


def resolve_impl(op: str, impl: str, device: torch.device, paths: Mapping[str, Probe]) -> str:
    """Pick the implementation of ``op`` to run on ``device``.

    Args:
        op: the op's public name, used in error messages.
        impl: what the caller asked for: "auto" or one of ``paths``.
        device: the device of the op's input tensors.
        paths: implementation name -> availability probe, fastest first; must hold "ref".

    Returns:
        The implementation name to run.

    Raises:
        ValueError: ``impl`` is not a known implementation name of this op.
        RuntimeError: ``impl`` names a path that cannot run here; says what is missing.
    """
    if impl not in IMPLS:
        raise ValueError(f"{op}: impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        if forced_impl() == "ref":
            return "ref"
        for name, probe in paths.items():
            if probe(device) is None:
                return name
        return "ref"
    if impl not in paths:
        raise ValueError(f"{op}: impl={impl!r} is not implemented for this op; it has {tuple(paths)}")
    reason = paths[impl](device)
    if reason is not None:
        raise RuntimeError(f"{op}: impl={impl!r} is unavailable on {device}: {reason}")
    return impl


def triton_unavailable(device: torch.device) -> str | None:
    """Availability probe of an explicit ``impl="triton"`` request (``None`` when it can
    run on ``device``): CUDA tensors, or CPU tensors under Triton's interpreter."""
    if not TRITON_INSTALLED:
        return "the triton package is not installed"
    if device.type == "cuda":
        return None
    if device.type == "cpu" and TRITON_INTERPRETER:
        return None
    return "Triton kernels run on CUDA tensors (or on CPU tensors with TRITON_INTERPRET=1 set before tri3d is imported)"


def triton_auto_unavailable(device: torch.device) -> str | None:
    """Probe for ``impl="auto"``: only real GPU runs; the interpreter is never chosen implicitly."""
    if device.type != "cuda":
        return "auto uses Triton only on CUDA tensors"
    return triton_unavailable(device)
