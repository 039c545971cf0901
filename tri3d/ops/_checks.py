"""Input validation shared by the ops, renderer and cameras.

Shape and dtype checks are free and always run. Value checks (finite, sorted) read the
data: on CPU tensors they always run; on CUDA tensors they would synchronize the stream
in the hot path, so they run there only when ``TRI3D_CHECK=1``. Under ``torch.compile``
tracing they are skipped (data-dependent branches would break the graph).
"""
from __future__ import annotations

import os
from typing import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def value_checks_on(t: torch.Tensor) -> bool:
    """Whether checks that read ``t``'s values run (see module doc)."""
    if torch.compiler.is_compiling():
        return False
    return t.device.type == "cpu" or os.environ.get("TRI3D_CHECK", "0") == "1"


def check_tensor(
    name: str,
    t: object,
    shape: Sequence[int | str | None],
    dtypes: Sequence[torch.dtype] = FLOAT_DTYPES,
) -> torch.Tensor:
    """Check that ``t`` is a tensor of the given rank, sizes and dtype.

    Args:
        name: the argument's name, put in the error message.
        t: the value to check.
        shape: expected sizes; an int must match exactly, ``None`` or a string matches
            any size (a string is the dimension's name, shown in the message).
        dtypes: accepted dtypes.

    Returns:
        ``t`` unchanged.

    Raises:
        ValueError: naming ``name`` with the expected and actual shape or dtype.
    """
    pretty = "[" + ", ".join(str(s) if s is not None else "*" for s in shape) + "]"
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape {pretty}, got {type(t).__name__}")
    if t.dim() != len(shape) or any(isinstance(s, int) and s != n for s, n in zip(shape, t.shape)):
        raise ValueError(f"{name} must have shape {pretty}, got {list(t.shape)}")
    if t.dtype not in dtypes:
        raise ValueError(f"{name} must have dtype in {[str(d) for d in dtypes]}, got {t.dtype}")
    return t


def check_same_size(names: Sequence[str], tensors: Sequence[torch.Tensor], dims: Sequence[int]) -> None:
    """Check that ``tensors[k].shape[dims[k]]`` agree; names the arguments otherwise."""
    sizes = [t.shape[d] for t, d in zip(tensors, dims)]
    if len(set(sizes)) > 1:
        parts = ", ".join(f"{n}: {s}" for n, s in zip(names, sizes))
        raise ValueError(f"sizes of {', '.join(names)} must agree, got {parts}")


def check_finite(name: str, t: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` when ``t`` holds NaN or inf (see module doc)."""
    if value_checks_on(t) and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, found NaN or inf")


def check_sorted(name: str, t: torch.Tensor, dim: int) -> None:
    """Raise ``ValueError`` naming ``name`` when ``t`` is not non-decreasing along ``dim``."""
    if value_checks_on(t) and t.shape[dim] > 1 and bool((t.diff(dim=dim) < 0).any()):
        raise ValueError(f"{name} must be sorted (non-decreasing) along dim {dim}")


def check_same_device(names: Sequence[str], tensors: Sequence[object]) -> None:
    """Raise ``ValueError`` naming the arguments when the tensors among ``tensors`` are not
    all on one device (before any path is chosen: a native path must never see this)."""
    devices = [(n, t.device) for n, t in zip(names, tensors) if isinstance(t, torch.Tensor)]
    if len({d for _, d in devices}) > 1:
        parts = ", ".join(f"{n}: {d}" for n, d in devices)
        raise ValueError(f"{', '.join(n for n, _ in devices)} must be on one device, got {parts}")


def check_nonnegative(name: str, t: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` when ``t`` holds a negative value or NaN (see module doc)."""
    if value_checks_on(t) and not bool((t >= 0).all()):
        raise ValueError(f"{name} must be finite and >= 0, found a negative value or NaN")
