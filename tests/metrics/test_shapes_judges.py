"""The shapes judges: depth nearness, a depth judge that separates the five shapes from
ground-truth depth alone and calls flat cards flat, and the learning-curve plot."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tri3d.data.shapes import CLASS_NAMES, make_shapes_dataset
from tri3d.export.plot import plot_learning_curve, read_metrics
from tri3d.metrics.inversion import relative_depth_error
from tri3d.metrics.shapes_judges import (
    FLAT_CARD,
    JudgeConfig,
    depth_nearness,
    flat_cards,
    load_shapes_judge,
    shapes_ground_truth,
)

FIXTURE = JudgeConfig(train_per_class=150, train_seed=11, heldout_per_class=20, heldout_seed=12, steps=1000)


@pytest.fixture(scope="module")
def judge_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("judges")


@pytest.fixture(scope="module")
def depth_judge(judge_cache):
    return load_shapes_judge("depth", 16, judge=FIXTURE, cache_dir=judge_cache)


def test_depth_nearness_closed_form():
    depth = torch.tensor([2.0, 2.7, 3.4, 3.0, 1.0]).reshape(1, 1, 1, 5)
    opacity = torch.tensor([1.0, 0.9, 0.6, 0.4, 1.0]).reshape(1, 1, 1, 5)
    # (3.4 - d) / 1.4 on opaque pixels, clamped to [0, 1]; 0 where opacity <= 0.5.
    expected = torch.tensor([1.0, 0.5, 0.0, 0.0, 1.0]).reshape(1, 1, 1, 5)
    torch.testing.assert_close(depth_nearness(depth, opacity, 2.0, 3.4), expected)
    inf = torch.full((1, 1, 1, 1), float("inf"))
    assert depth_nearness(inf, torch.zeros_like(inf)).item() == 0  # empty rays: background


def test_flat_cards_are_flat_inside_the_silhouette():
    masks = torch.zeros(64, 1, 16, 16, dtype=torch.bool)
    masks[:, :, 4:12, 3:13] = True
    cards = flat_cards(masks, torch.Generator().manual_seed(0))
    assert (cards[~masks] == 0).all() and (cards[masks] > 0).all()
    inside = cards[:, 0, 4:12, 3:13]
    # A plane: second differences vanish along both axes.
    assert inside.diff(n=2, dim=1).abs().max() < 1e-5 and inside.diff(n=2, dim=2).abs().max() < 1e-5


def test_depth_judge_tells_the_shapes_apart_and_calls_flat_cards_flat(depth_judge, judge_cache):
    assert depth_judge.accuracy >= 0.9  # held-out real depth maps of another seed
    path = make_shapes_dataset(judge_cache / "fresh", resolution=16, per_class=10, seed=13)
    nearness, labels = shapes_ground_truth(path)
    predicted = depth_judge.probabilities(nearness).argmax(dim=1)
    assert (predicted == labels).float().mean() >= 0.9
    # Billboards: the same silhouettes at a constant or tilted depth are not shapes.
    cards = flat_cards(nearness > 0, torch.Generator().manual_seed(1))
    on_cards = depth_judge.probabilities(cards).argmax(dim=1)
    assert (on_cards == FLAT_CARD).float().mean() >= 0.9
    assert (on_cards == labels).float().mean() <= 0.1
    assert depth_judge.probabilities(cards).shape == (len(labels), len(CLASS_NAMES) + 1)


def test_judges_are_cached(depth_judge, judge_cache):
    again = load_shapes_judge("depth", 16, judge=FIXTURE, cache_dir=judge_cache)
    assert again.name == depth_judge.name and again.accuracy == depth_judge.accuracy
    x = torch.rand(3, 1, 16, 16)
    torch.testing.assert_close(again.features(x), depth_judge.features(x))
    with pytest.raises(ValueError, match="kind must be"):
        load_shapes_judge("normals", 16, cache_dir=judge_cache)


def test_learning_curve_plot(tmp_path):
    rows = [{"kimg": k, "fid": 100 / (k + 1), "depth_fid": 50 / (k + 1), "class_accuracy": 0.2 + 0.1 * k,
             "depth_class_accuracy": 0.2 + 0.05 * k, "d_class_accuracy": 0.5, "detector_accuracy_on_reals": 0.99,
             "depth_detector_accuracy_on_reals": 1.0} for k in range(5)]
    rows.insert(0, {"fid": 300.0, "init": True})  # tri3d metrics --init rows are not on the curve
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert [r["kimg"] for r in read_metrics(tmp_path)] == [0, 1, 2, 3, 4]
    path = plot_learning_curve(tmp_path)
    image = np.asarray(Image.open(path))
    assert image.shape == (300, 840, 3)
    blue, red = np.array([31, 119, 180]), np.array([214, 39, 40])
    for panel in (image[:, :420], image[:, 420:]):  # both series drawn in both panels
        assert (np.abs(panel.astype(int) - blue).sum(axis=2) == 0).sum() > 50
        assert (np.abs(panel.astype(int) - red).sum(axis=2) == 0).sum() > 50
    green_rows, _ = np.nonzero((np.abs(image.astype(int) - np.array([44, 160, 44])).sum(axis=2) == 0))
    # D's accuracy (0.5 throughout) is one level line in the accuracy panel, whose axis spans
    # rows 268 (0) to 24 (1), and nothing else is green: the judges' dashed lines are rgb / depth only.
    assert len(green_rows) > 50 and np.all(np.abs(green_rows - (268 - 0.5 * 244)) <= 3)
    assert not (np.abs(image[:, :420].astype(int) - np.array([44, 160, 44])).sum(axis=2) == 0).any()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        plot_learning_curve(tmp_path / "empty")


def test_relative_depth_error_closed_form():
    ref = torch.tensor([[2.0, 2.5], [3.0, 9.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True], [True, False]])
    # A prediction off by a global scale scores 0 after median scaling.
    assert relative_depth_error(ref * 1.7, ref, mask) == pytest.approx(0.0, abs=1e-12)
    pred = torch.tensor([[2.0, 3.0], [3.0, 0.0]])  # medians 2.5 (ref) and 3.0 (pred): s = 5/6
    s = 2.5 / 3.0
    expected = (abs(s * 2 - 2) / 2 + abs(s * 3 - 2.5) / 2.5 + abs(s * 3 - 3) / 3) / 3
    assert relative_depth_error(pred, ref, mask) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="no pixel"):
        relative_depth_error(pred, ref, torch.zeros_like(mask))


def test_inversion_metric_improves_what_it_optimizes(tmp_path, monkeypatch):
    """PTI on held-out shapes images with their true cameras: the perceptual distance it
    minimizes drops, depth errors are finite relative errors, and the report says which
    perceptual distance it used."""
    from tri3d.invert.pti import InversionConfig
    from tri3d.invert.run import make_perceptual
    from tri3d.metrics.inversion import evaluate_inversion
    from tri3d.models import TriplaneGenerator
    from tri3d.testing import micro_train_config

    monkeypatch.setenv("TRI3D_CACHE", str(tmp_path))
    cfg = micro_train_config(tmp_path / "unused", tmp_path / "runs")
    cfg.G.num_classes = 5
    torch.manual_seed(0)
    G = TriplaneGenerator(cfg.G)
    out = evaluate_inversion(G, cfg, 2, make_perceptual(None), inversion=InversionConfig(w_steps=20, pti_steps=40),
                             judge=cfg.metrics_judge)
    assert out["inversion_n"] == 2 and out["inversion_perceptual"] == "multiscale-pixels"
    assert out["inversion_perceptual_after"] < 0.7 * out["inversion_perceptual_before"]
    for key in ("inversion_depth_error_before", "inversion_depth_error_after"):
        assert 0 <= out[key] < 10
    with pytest.raises(ValueError, match="--inversion must be >= 1"):
        evaluate_inversion(G, cfg, 0, make_perceptual(None))
