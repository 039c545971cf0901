"""Pivotal tuning inversion on a tiny generator: recovers a known latent's image and depth."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tri3d.invert.perceptual import FeaturePerceptual, VGGPerceptual
from tri3d.invert.pti import InversionConfig, class_average_w, depth_error, invert, psnr, render
from tri3d.invert.run import load_target, parse_pose
from tri3d.models import GeneratorConfig, RendererConfig, TriplaneGenerator
from tri3d.render.camera import fov_to_intrinsics, look_at


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    G = TriplaneGenerator(GeneratorConfig(
        z_dim=16, w_dim=16, num_classes=3, triplane_resolution=16, triplane_channels=8, channel_base=256,
        channel_max=32, decoder_hidden=16, decoder_layers=3, image_resolution=16, neural_rendering_resolution=16,
        renderer=RendererConfig(depth_samples=12, importance_samples=12, near=2.0, far=3.4)))
    with torch.no_grad():  # sharper densities and colours than the default init
        for p in G.decoder.layers[-1].parameters():
            p.mul_(4)
    K = fov_to_intrinsics(30.0)
    cam = look_at(torch.tensor([0.5, 0.4, 2.6]) / torch.tensor([0.5, 0.4, 2.6]).norm() * 2.7)
    with torch.no_grad():
        start = class_average_w(G, 1, 256, 0)
        ws_true = start + 3 * (G.mapping(torch.randn(1, 16), torch.tensor([1])) - start)  # far from the average
        target = render(G, ws_true, cam, K)
    return G, K, cam, start, target


def test_inversion_recovers_image_and_depth(toy):
    # Measured on this toy: PSNR +19 dB over the class-average start and depth error
    # 0.0153 -> 0.0086 (-44%); the thresholds leave margin.
    G, K, cam, start, target = toy
    image, depth = target["image"][0, 0], target["depth"][0, 0]
    init = render(G, start, cam, K)
    before = [p.detach().clone() for p in G.parameters()]
    result = invert(G, image, c=1, cam2world=cam, intrinsics=K, perceptual=FeaturePerceptual(),
                    cfg=InversionConfig(w_steps=100, pti_steps=100, lr_w=0.05, lr_pti=1e-3))
    w_only = render(G, result.ws, cam, K)
    tuned = render(result.G, result.ws, cam, K)
    psnr_init, psnr_w, psnr_pti = (psnr(x["image"][0, 0], image) for x in (init, w_only, tuned))
    assert psnr_w > psnr_init + 5 and psnr_pti > psnr_init + 10 and psnr_pti >= psnr_w
    err_init = depth_error(init["depth"][0, 0], depth)
    err = depth_error(tuned["depth"][0, 0], depth)
    assert err < 0.75 * err_init
    assert len(result.losses["w"]) == 100 and result.losses["w"][-1] < result.losses["w"][0]
    assert result.losses["pti"][-1] < result.losses["pti"][0]
    assert all(torch.equal(a, b) for a, b in zip(G.parameters(), before))  # G itself untouched (tuned a copy)
    assert any(not torch.equal(a, b) for a, b in zip(result.G.parameters(), before))  # the copy was tuned


def test_locality_regularization_runs_and_bad_inputs(toy):
    G, K, cam, _, target = toy
    image = target["image"][0, 0]
    r = invert(G, image, c=0, cam2world=cam, intrinsics=K, perceptual=FeaturePerceptual(),
               cfg=InversionConfig(w_steps=2, pti_steps=3, locality_weight=1.0))
    assert len(r.losses["pti"]) == 3 and all(np.isfinite(r.losses["pti"]))
    with pytest.raises(ValueError, match="class must be in"):
        invert(G, image, c=7, cam2world=cam, intrinsics=K, perceptual=FeaturePerceptual())
    with pytest.raises(ValueError, match="target must have shape"):
        invert(G, image[:, :8], c=0, cam2world=cam, intrinsics=K, perceptual=FeaturePerceptual())


def test_target_loading_conversions_and_errors(tmp_path):
    Image.new("L", (40, 30), 200).save(tmp_path / "gray.png")
    Image.new("RGBA", (20, 20), (10, 20, 30, 0)).save(tmp_path / "rgba.png")
    g = load_target(tmp_path / "gray.png", 16)
    assert g.shape == (3, 16, 16) and torch.allclose(g[0], g[1]) and abs(g.mean().item() - (200 / 127.5 - 1)) < 1e-2
    rgba = load_target(tmp_path / "rgba.png", 16)
    assert rgba.shape == (3, 16, 16) and abs(rgba[2].mean().item() - (30 / 127.5 - 1)) < 1e-2
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.jpg: unreadable image"):
        load_target(tmp_path / "bad.jpg", 16)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_target(tmp_path / "missing.png", 16)


def test_pose_parsing():
    front = parse_pose("front", 2.7)
    torch.testing.assert_close(front[:3, 3], torch.tensor([0.0, 0.0, 2.7]), atol=1e-6, rtol=0)
    side = parse_pose("90,0", 2.7)
    torch.testing.assert_close(side[:3, 3], torch.tensor([2.7, 0.0, 0.0]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="--pose"):
        parse_pose("left", 2.7)


class VGGStandIn(torch.nn.Module):
    def forward(self, x: torch.Tensor, resize_images: bool = True, return_lpips: bool = False):
        f = torch.nn.functional.avg_pool2d(x / 255, 4).flatten(1)
        return f / f.norm(p=2, dim=1, keepdim=True) if return_lpips else f


def test_vgg_loader_with_stand_in(tmp_path):
    path = tmp_path / "vgg16.pt"
    torch.jit.script(VGGStandIn()).save(str(path))
    vgg = VGGPerceptual(path)
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    d = vgg(a, b)
    fa = VGGStandIn()((a + 1) * 127.5, return_lpips=True)
    fb = VGGStandIn()((b + 1) * 127.5, return_lpips=True)
    torch.testing.assert_close(d, (fa - fb).square().sum(1))
    assert vgg(a, a).abs().max() == 0
    with pytest.raises(FileNotFoundError, match="vgg16"):
        VGGPerceptual(tmp_path / "nope.pt")
