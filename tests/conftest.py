"""Test setup: without a GPU, Triton kernels run under the interpreter on CPU tensors."""
from __future__ import annotations

import os

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
