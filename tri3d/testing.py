"""Accuracy rule for fused paths (DESIGN.md, "Tolerances"), shared by tests and benches.

A fused result passes when its error against an fp64 reference is at most 2x the error
of the same-precision `_ref` path against that reference, or below a dtype floor.
"""
from __future__ import annotations

import torch
from torch import Tensor

FLOORS = {"fp32": 1e-5, "tf32": 5e-4, "bf16": 2e-2, "fp16": 2e-2}


def relative_error(x: Tensor, reference: Tensor) -> float:
    """``max |x - ref| / max |ref|`` computed in fp64 (0 when both are zero)."""
    ref = reference.double()
    scale = ref.abs().max().item()
    err = (x.double() - ref).abs().max().item()
    return err / scale if scale > 0 else err


def assert_fused_close(fused: Tensor, ref_same: Tensor, ref64: Tensor, floor: float, name: str = "output") -> None:
    """Assert the tolerance rule; the message gives both errors and the bound."""
    if fused.shape != ref64.shape:
        raise AssertionError(f"{name}: shape {list(fused.shape)} != reference {list(ref64.shape)}")
    if not torch.isfinite(fused).all():
        raise AssertionError(f"{name}: fused result has NaN or inf")
    e_fused, e_ref = relative_error(fused, ref64), relative_error(ref_same, ref64)
    bound = max(2 * e_ref, floor)
    if e_fused > bound:
        raise AssertionError(f"{name}: fused error {e_fused:.3g} > bound {bound:.3g} (ref error {e_ref:.3g}, floor {floor:g})")
