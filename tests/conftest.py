"""Test setup: without a GPU, Triton kernels run under the interpreter on CPU tensors."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

os.environ["TRI3D_OFFLINE"] = "1"  # tests never reach the network (test_download serves its own files)
HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when kernels are decorated, so set it first


@pytest.fixture
def device() -> torch.device:
    """Where fused paths run in this session: CUDA when present, else the CPU interpreter."""
    return torch.device("cuda" if HAS_CUDA else "cpu")


@pytest.fixture
def interpreter_device(device: torch.device) -> torch.device:
    """The CPU interpreter's device, for tests that launch kernel mutants (each a new
    kernel source): skipped on a GPU, where every mutant would be compiled anew."""
    if device.type == "cuda":
        pytest.skip("mutants run under the interpreter (CPU sessions and CI)")
    return device


@pytest.fixture
def load_experiment(monkeypatch):
    """Import ``experiments/<name>.py`` as module ``name`` for one test (scripts, not a package)."""
    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module
    return load
