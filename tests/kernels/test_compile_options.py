"""The project's compile options (``kernels.common.COMPILE_OPTIONS``) reach every Triton
launch and the AOT report, whatever Triton's own default is: Triton 3.9 warns that from
3.10 multiplies and adds are no longer contracted to FMAs unless a launch asks."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton")

TRIPLANE_KERNELS = ("triplane_mlp_fwd_kernel", "triplane_mlp_bwd_kernel")
MODCONV_KERNELS = ("modconv_fwd_kernel", "modconv_act_bwd_kernel", "modconv_dgrad_kernel", "modconv_wgrad_kernel")


def test_every_launch_passes_the_compile_options(device, monkeypatch):
    import tri3d.kernels.modconv as modconv_kernels
    import tri3d.kernels.triplane_mlp as triplane_kernels
    from tri3d.kernels.common import COMPILE_OPTIONS
    from tri3d.models import TriplaneDecoder
    from tri3d.ops import modulated_conv2d, triplane_decode

    options = {}

    class Recorder:  # stands in for a kernel: records each launch's keywords, then launches
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                options.setdefault(self.name, []).append(kwargs)
                return self.kernel[grid](*args, **kwargs)
            return launch

    for module, names in ((triplane_kernels, TRIPLANE_KERNELS), (modconv_kernels, MODCONV_KERNELS)):
        for name in names:
            monkeypatch.setattr(module, name, Recorder(name, getattr(module, name)))
    g = torch.Generator().manual_seed(0)
    planes = torch.randn(1, 3, 4, 5, 6, generator=g).to(device).requires_grad_()
    decoder = TriplaneDecoder(in_features=4, hidden=8, n_hidden=2, out_features=3).to(device)
    sigma, rgb = triplane_decode(planes, torch.rand(1, 9, 3, generator=g).to(device) - 0.5, decoder, impl="triton",
                                 precision="ieee")
    (sigma.sum() + rgb.sum()).backward()
    x = torch.randn(2, 5, 4, 3, generator=g).to(device).requires_grad_()
    weight = torch.randn(6, 5, 3, 3, generator=g).to(device).requires_grad_()
    styles = torch.rand(2, 5, generator=g).to(device).requires_grad_()
    modulated_conv2d(x, weight, styles, activation="lrelu", impl="triton", precision="ieee").sum().backward()
    assert set(options) == {*TRIPLANE_KERNELS, *MODCONV_KERNELS}
    for name, launches in options.items():
        for kwargs in launches:
            assert {k: kwargs.get(k) for k in COMPILE_OPTIONS} == COMPILE_OPTIONS, name


FUSION_SCRIPT = r"""
import dataclasses, json, os, re
os.environ["TRITON_DEFAULT_FP_FUSION"] = "0"  # what Triton 3.10 makes the default
from tri3d.kernels.aot import compile_with_sass
from tri3d.kernels.sass_cost import per_point
from tri3d.kernels.triplane_mlp import IMAGENET_CALL, launch_specs
spec = [s for s in launch_specs(**IMAGENET_CALL, n_hidden=1, precision="bf16", plane_dtype="bf16")
        if s.name.startswith("fwd")][0]
rows = {}
for fusion in (spec.enable_fp_fusion, False):
    report, sass = compile_with_sass(dataclasses.replace(spec, enable_fp_fusion=fusion), 90)
    rows[str(fusion)] = dict(ffma=len(re.findall(r"\bFFMA\b", sass)),
                             total=per_point(sass, num_warps=spec.num_warps, points_per_block=spec.constexprs["BLOCK"])["total"])
print(json.dumps(rows))
"""


def test_the_report_compiles_with_fma_contraction_whatever_tritons_default():
    """Under ``TRITON_DEFAULT_FP_FUSION=0`` the forward spec still compiles with FFMAs, and
    with fewer warp-instructions per point than the same spec without contraction."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", FUSION_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    rows = json.loads(out.stdout)
    pinned, unfused = rows["True"], rows["False"]
    assert pinned["ffma"] > 2 * unfused["ffma"]
    assert pinned["total"] < unfused["total"]
