"""Detector loading (TorchScript stand-in with the standard call signature) and the
evaluation pipeline end to end on a tiny generator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tri3d.data import ImageDataset
from tri3d.data.shapes import CLASS_NAMES, make_shapes_dataset
from tri3d.metrics.detector import load_detector, load_metric_detectors
from tri3d.metrics.evaluate import evaluate, generate_views, real_depth_features, real_features
from tri3d.metrics.scores import feature_stats, frechet_distance
from tri3d.metrics.shapes_judges import JudgeConfig
from tri3d.models import GeneratorConfig, RendererConfig, TriplaneGenerator


class StandIn(torch.nn.Module):
    """Behaves as inception-2015-12-05.pt does: uint8 images in; ``return_features=True``
    gives features, ``no_output_bias=True`` the softmax probabilities of the logits
    without their output bias, otherwise the logits."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 8, bias=False)
        self.cls = torch.nn.Linear(8, 4)
        with torch.no_grad():
            self.cls.weight.mul_(10)  # confident predictions: IS well above 1

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False):
        f = self.proj(torch.log1p(x.float().mean(dim=(2, 3))))
        if return_features:
            return f
        if no_output_bias:
            return torch.softmax(f @ self.cls.weight.T, dim=1)
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
    torch.testing.assert_close(det.probabilities(imgs), ref(imgs, no_output_bias=True))
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.pt: not a TorchScript detector"):
        load_detector(str(tmp_path / "bad.pt"))


def _tiny_generator(num_classes: int = 5) -> TriplaneGenerator:
    torch.manual_seed(0)
    return TriplaneGenerator(GeneratorConfig(z_dim=8, w_dim=8, num_classes=num_classes, triplane_resolution=8,
                                             triplane_channels=4, channel_base=64, channel_max=8, decoder_hidden=8,
                                             image_resolution=16, neural_rendering_resolution=16,
                                             renderer=RendererConfig(depth_samples=4, importance_samples=4,
                                                                     near=2.0, far=3.4)))


@pytest.mark.parametrize("psi", [1.0, 0.5])
def test_inception_score_reads_the_detectors_probabilities(tmp_path, psi):
    """IS of the pipeline equals IS computed by hand from the stand-in's probabilities of
    the same generated views (a log-softmax applied on top of them gives IS ~ 1), truncated
    samples (``truncation_psi``) included."""
    path = tmp_path / "det.pt"
    torch.manual_seed(0)
    module = torch.jit.script(StandIn())
    module.save(str(path))
    ds = ImageDataset(make_shapes_dataset(tmp_path / "s", resolution=16, per_class=4, seed=1))
    G = _tiny_generator()
    G.synthesis.blocks[0].const.data.mul_(50)  # images that vary in colour, so the stand-in's classes vary
    result = evaluate(G, ds, load_detector(str(path)), num_gen=40, radius=2.7, fov_deg=30.0, kid_subsets=2,
                      cache_dir=tmp_path, truncation_psi=psi)
    images, _, _ = generate_views(G, ds.labels, 40, radius=2.7, fov_deg=30.0, truncation_psi=psi)
    assert result["truncation_psi"] == psi
    with torch.no_grad():
        p = module(images, no_output_bias=True).double().numpy()
    scores = []
    for i in range(10):
        part = p[i * 4 : (i + 1) * 4]
        scores.append(np.exp((part * (np.log(part) - np.log(part.mean(axis=0)))).sum(axis=1).mean()))
    assert result["is_mean"] == pytest.approx(np.mean(scores), rel=1e-6)
    assert result["is_mean"] > 1.02  # a log-softmax over the probabilities would give < 1.001


def test_missing_detector_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("TRI3D_DETECTOR", raising=False)
    monkeypatch.setenv("TRI3D_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"inception-2015-12-05\.pt is not in the cache .*TRI3D_OFFLINE"):
        load_detector(None, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="detector not found: .*nope.pt"):
        load_detector(str(tmp_path / "nope.pt"))


def test_shapes_judges_and_pipeline(tmp_path):
    """The shapes judges score real images well and tell an untrained generator from the
    real set, in rgb and in depth."""
    ds = ImageDataset(make_shapes_dataset(tmp_path / "s", resolution=16, per_class=20, seed=0))
    judge = JudgeConfig(train_per_class=60, train_seed=11, heldout_per_class=20, heldout_seed=12, steps=300)
    det, depth_judge = load_metric_detectors("shapes", dataset=ds, cache_dir=tmp_path, judge=judge)
    assert det.accuracy > 0.6 and depth_judge.accuracy > 0.8  # held-out real images; chance is 0.2
    again = load_detector("shapes", dataset=ds, cache_dir=tmp_path, judge=judge)  # cached
    assert again.name == det.name and again.accuracy == det.accuracy
    feats = real_features(ds, det, cache_dir=tmp_path)
    assert feats.shape == (100, 128)
    np.testing.assert_array_equal(real_features(ds, det, cache_dir=tmp_path), feats)
    G = _tiny_generator()
    result = evaluate(G, ds, det, depth_judge=depth_judge, num_gen=50, radius=2.7, fov_deg=30.0, kid_subsets=5,
                      cache_dir=tmp_path)
    # Two halves of the real set are far closer than the real set and an untrained G.
    halves = frechet_distance(*feature_stats(feats[::2]), *feature_stats(feats[1::2]))
    assert result["fid"] > 3 * halves
    depth_feats = real_depth_features(ds, depth_judge, cache_dir=tmp_path)
    depth_halves = frechet_distance(*feature_stats(depth_feats[::2]), *feature_stats(depth_feats[1::2]))
    assert result["depth_fid"] > 3 * depth_halves
    # An untrained G's depth maps are not recognisable shapes.
    assert result["depth_class_accuracy"] < 0.5 and 0 <= result["depth_flat_fraction"] <= 1
    for key, labels in (("class_confusion", len(CLASS_NAMES)), ("depth_confusion", len(CLASS_NAMES) + 1)):
        rows = result[key]  # per conditioning class, its views' labels: each drawn class's row sums to 1
        assert len(rows) == G.config.num_classes and all(len(row) == labels for row in rows)
        assert all(abs(sum(row) - 1) < 1e-3 or sum(row) == 0 for row in rows) and sum(map(sum, rows)) > 0
    assert result["detector_accuracy_on_reals"] == det.accuracy
    assert result["depth_detector_accuracy_on_reals"] == depth_judge.accuracy
