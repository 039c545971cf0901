"""Generator forward+backward with V views per object (multi-view discrimination cost).

GPU: the `imagenet` preset's generator (256 triplane, +g, +d, 48+48 samples) at batch 4,
`ref` (TRI3D_IMPL=ref) vs the fused paths (`auto`). CPU: a small generator, ref only
(records the V scaling; timings on 2 cores say nothing about a GPU). Records ms, images/s
(objects x views per second) and peak memory (CUDA).

Run: pytest bench/test_bench_multiview.py --benchmark-json out.json
"""
from __future__ import annotations

import pytest
import torch

from tri3d.models import GeneratorConfig, RendererConfig, TriplaneGenerator
from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses
from tri3d.runs.config import preset

from timing import cuda_peak_mb, time_case

CUDA = torch.cuda.is_available()


def generator_config() -> GeneratorConfig:
    if CUDA:
        return preset("imagenet").G
    return GeneratorConfig(z_dim=32, w_dim=32, num_classes=10, triplane_resolution=32, triplane_channels=16,
                           channel_base=1024, channel_max=64, extra_blocks=True, decoder_hidden=32, decoder_layers=3,
                           image_resolution=32, neural_rendering_resolution=32,
                           renderer=RendererConfig(depth_samples=12, importance_samples=12))


@pytest.mark.parametrize("views", [1, 2, 3, 4])
@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_generator_multiview(benchmark, monkeypatch, views, impl):
    if impl == "auto" and not CUDA:
        pytest.skip("the fused paths need a GPU (auto == ref on CPU)")
    if impl == "ref":
        monkeypatch.setenv("TRI3D_IMPL", "ref")
    device = "cuda" if CUDA else "cpu"
    torch.manual_seed(0)
    cfg = generator_config()
    cfg.num_classes = 10
    G = TriplaneGenerator(cfg).to(device)
    batch = 4
    z = torch.randn(batch, cfg.z_dim, device=device)
    c = torch.randint(0, 10, (batch,), device=device)
    cams = sample_multiview_poses(batch, views, min_angle_deg=0.0).to(device)
    K = fov_to_intrinsics(18.837).to(device)

    def step():
        out = G(z, c, cams, K)
        out["image"].square().mean().backward()

    def zero_grads():
        G.zero_grad(set_to_none=True)

    step()
    peak = cuda_peak_mb(step, zero_grads, above_allocated=False)
    timing = time_case(benchmark, step, rounds=10 if CUDA else 3, warmup=1, setup=zero_grads)
    benchmark.extra_info.update(**timing, images_per_s=batch * views / (timing["ms"] * 1e-3), peak_mb=peak,
                                views=views, impl=impl, device=torch.cuda.get_device_name() if CUDA else "cpu")
