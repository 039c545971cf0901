"""Detector loading (TorchScript stand-in with the standard call signature) and the
evaluation pipeline end to end on a tiny generator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tri3d.data import ImageDataset
from tri3d.data.shapes import make_shapes_dataset
from tri3d.metrics.detector import load_detector
from tri3d.metrics.evaluate import evaluate, real_features
from tri3d.models import GeneratorConfig, RendererConfig, TriplaneGenerator


class StandIn(torch.nn.Module):
    """Same call signature as inception-2015-12-05.pt: uint8 images in, features or logits out."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 8)
        self.cls = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False):
        f = self.proj(x.float().mean(dim=(2, 3)) / 255)
        if return_features:
            return f
        if no_output_bias:
            return f @ self.cls.weight.T
        return self.cls(f)


def test_torchscript_detector_loads_and_calls(tmp_path):
    path = tmp_path / "det.pt"
    module = torch.jit.script(StandIn())
    module.save(str(path))
    det = load_detector(str(path))
    imgs = torch.randint(0, 255, (5, 3, 16, 16), dtype=torch.uint8)
    ref = StandIn()
    ref.load_state_dict(module.state_dict())
    torch.testing.assert_close(det.features(imgs), ref(imgs, return_features=True))
    torch.testing.assert_close(det.logits(imgs), ref(imgs, no_output_bias=True))
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.pt: not a TorchScript detector"):
        load_detector(str(tmp_path / "bad.pt"))


def test_missing_detector_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("TRI3D_DETECTOR", raising=False)
    with pytest.raises(FileNotFoundError, match="inception-2015-12-05.pt"):
        load_detector(None, cache_dir=tmp_path)


def test_shapes_detector_and_pipeline(tmp_path):
    ds = ImageDataset(make_shapes_dataset(tmp_path / "s", resolution=16, per_class=60, seed=1))
    det = load_detector("shapes", dataset=ds, cache_dir=tmp_path)
    assert det.accuracy > 0.4  # twice chance (0.2) on held-out 16-pixel images
    again = load_detector("shapes", dataset=ds, cache_dir=tmp_path)  # cached
    assert again.name == det.name and again.accuracy == det.accuracy
    feats = real_features(ds, det, cache_dir=tmp_path)
    assert feats.shape == (300, 128)
    np.testing.assert_array_equal(real_features(ds, det, cache_dir=tmp_path), feats)
    # Real images scored against themselves vs a random generator.
    torch.manual_seed(0)
    G = TriplaneGenerator(GeneratorConfig(z_dim=8, w_dim=8, num_classes=5, triplane_resolution=8, triplane_channels=4,
                                          channel_base=64, channel_max=8, decoder_hidden=8, image_resolution=16,
                                          neural_rendering_resolution=16,
                                          renderer=RendererConfig(depth_samples=4, importance_samples=4, near=2.0,
                                                                  far=3.4)))
    result = evaluate(G, ds, det, num_gen=40, radius=2.7, fov_deg=30.0, kid_subsets=5, cache_dir=tmp_path)
    assert result["fid"] > 0 and np.isfinite(result["kid"]) and 1 <= result["is_mean"] <= 5
    assert 0 <= result["class_accuracy"] <= 1
