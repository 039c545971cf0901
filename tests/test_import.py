"""Importing tri3d is CPU-safe: no CUDA initialization, no compilation."""
from __future__ import annotations

import subprocess
import sys


def test_import_does_not_touch_cuda_or_triton():
    code = (
        "import sys, torch\n"
        "import tri3d, tri3d.ops, tri3d.models, tri3d.render, tri3d.kernels, tri3d.cli\n"
        "assert not torch.cuda.is_initialized()\n"
        "assert 'triton' not in sys.modules, 'importing tri3d imported triton'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
