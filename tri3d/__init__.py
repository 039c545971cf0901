"""tri3d: class-conditional 3D-aware triplane GANs on fused GPU kernels.

Importing tri3d never touches CUDA and never compiles anything; native and Triton
paths load lazily at their first use.
"""
from __future__ import annotations

__version__ = "0.1.0"
