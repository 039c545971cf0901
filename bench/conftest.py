"""Bench setup: real kernels on CUDA; without a GPU, Triton runs under the interpreter
(small sizes only) so every suite still runs end to end."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # bench helpers (roofline.py) import by name

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
