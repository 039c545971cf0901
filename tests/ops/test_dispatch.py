"""The dispatch rule: auto, explicit, unavailable paths, TRI3D_IMPL."""
from __future__ import annotations

import pytest
import torch

from tri3d.ops import composite, sample_triplane
from tri3d.ops._dispatch import always, resolve_impl

CPU = torch.device("cpu")


def missing(device):
    return "the widget is not installed"


def test_auto_takes_first_available():
    assert resolve_impl("op", "auto", CPU, {"fast": missing, "ref": always}) == "ref"
    assert resolve_impl("op", "auto", CPU, {"cpp": always, "ref": always}) == "cpp"


def test_explicit_unavailable_raises_with_reason():
    with pytest.raises(RuntimeError, match="op: impl='cuda' is unavailable on cpu: the widget is not installed"):
        resolve_impl("op", "cuda", CPU, {"cuda": missing, "ref": always})


def test_unknown_and_unsupported_impl():
    with pytest.raises(ValueError, match="impl must be one of"):
        resolve_impl("op", "fastest", CPU, {"ref": always})
    with pytest.raises(ValueError, match="sample_triplane: impl='cuda' is not implemented"):
        sample_triplane(torch.zeros(1, 3, 2, 4, 4), torch.zeros(1, 2, 3), impl="cuda")


def test_env_forces_ref_for_auto(monkeypatch):
    monkeypatch.setenv("TRI3D_IMPL", "ref")
    assert resolve_impl("op", "auto", CPU, {"cpp": always, "ref": always}) == "ref"
    assert resolve_impl("op", "cpp", CPU, {"cpp": always, "ref": always}) == "cpp"
    monkeypatch.setenv("TRI3D_IMPL", "fast")
    with pytest.raises(ValueError, match="TRI3D_IMPL"):
        composite(torch.zeros(1, 1, 3, 1), torch.zeros(1, 1, 3, 1), torch.arange(3.0).reshape(1, 1, 3, 1))
