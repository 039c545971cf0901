"""Stratified and importance depth sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from tri3d.ops import importance_depths, merge_samples
from tri3d.ops.importance import sample_pdf, smooth_weights
from tri3d.render.sampling import stratified_depths


def test_stratified_one_sample_per_bin():
    g = torch.Generator().manual_seed(0)
    d = stratified_depths(2, 100, 9, 1.0, 3.0, generator=g)[..., 0]
    step = 2.0 / 8
    k = torch.arange(9)
    lo = 1.0 + k * step
    assert ((d >= lo) & (d <= lo + step)).all()
    frac = ((d - lo) / step).reshape(-1).numpy()
    assert stats.kstest(frac, "uniform").pvalue > 0.01
    det = stratified_depths(1, 1, 9, 1.0, 3.0, deterministic=True)[0, 0, :, 0]
    torch.testing.assert_close(det, lo + step / 2)


def test_smoothing_by_hand():
    w = torch.tensor([[0.0, 1.0, 0.0, 0.0, 2.0]])
    # max-pool (2, 1, pad 1): [0, 1, 1, 0, 2, 2]; avg-pool (2, 1): [0.5, 1, 0.5, 1, 2]
    torch.testing.assert_close(smooth_weights(w), torch.tensor([[0.5, 1.0, 0.5, 1.0, 2.0]]) + 0.01)


def test_sample_pdf_follows_piecewise_constant_density():
    g = torch.Generator().manual_seed(1)
    bins = torch.tensor([[0.0, 1.0, 3.0, 4.0, 7.0]])
    w = torch.tensor([[1.0, 0.2, 3.0, 2.0]])
    n = 200_000
    x = sample_pdf(bins, w, torch.rand(1, n, generator=g))[0].numpy()
    assert x.min() >= 0 and x.max() <= 7
    counts, _ = np.histogram(x, bins=bins[0].numpy())
    p = (w[0].double() + 1e-5) / (w[0].double() + 1e-5).sum()
    assert stats.chisquare(counts, p.numpy() * n).pvalue > 0.01
    inside = x[(x >= 4) & (x < 7)]  # uniform within a bin
    assert stats.kstest((inside - 4) / 3, "uniform").pvalue > 0.01


def test_importance_depths_concentrate_where_weights_are():
    g = torch.Generator().manual_seed(2)
    S = 48
    depths = torch.linspace(2.0, 3.0, S).reshape(1, 1, S, 1).repeat(1, 50, 1, 1)
    weights = torch.zeros(1, 50, S - 1, 1)
    weights[:, :, 20] = 1.0
    fine = importance_depths(depths, weights, 64, generator=g)
    assert fine.shape == (1, 50, 64, 1)
    assert (fine >= 2.0).all() and (fine <= 3.0).all()
    near_peak = ((fine - (depths[0, 0, 20] + depths[0, 0, 21]) / 2).abs() < 3 / S).float().mean()
    assert near_peak > 0.8
    det = importance_depths(depths, weights, 64, deterministic=True)
    assert torch.equal(det, importance_depths(depths, weights, 64, deterministic=True))


def test_merge_sorts_and_carries_values():
    g = torch.Generator().manual_seed(3)
    da, db = torch.sort(torch.rand(2, 3, 5, 1, generator=g), dim=2).values, torch.rand(2, 3, 4, 1, generator=g)
    sa, sb = da * 10, db * 10  # values tied to their depths
    ca, cb = da.expand(-1, -1, -1, 2) + 1, db.expand(-1, -1, -1, 2) + 1
    d, s, c = merge_samples(da, sa, ca, db, sb, cb)
    assert (d.diff(dim=2) >= 0).all()
    torch.testing.assert_close(s, d * 10)
    torch.testing.assert_close(c, d.expand(-1, -1, -1, 2) + 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="near and far"):
        stratified_depths(1, 1, 8, 3.0, 2.0)
    with pytest.raises(ValueError, match="weights must have shape"):
        importance_depths(torch.rand(1, 2, 8, 1), torch.rand(1, 2, 8, 1), 4)
