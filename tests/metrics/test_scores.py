"""FID / KID / IS against closed forms, scipy and direct computations."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from tri3d.metrics import frechet_distance, inception_score, kernel_inception_distance
from tri3d.metrics.scores import feature_stats


def random_spd(d, rng):
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_frechet_closed_form_and_scipy():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    # Commuting (diagonal) covariances: FID = |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    closed = np.square(mu1 - mu2).sum() + np.square(np.sqrt(a) - np.sqrt(b)).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(closed, rel=1e-10)
    s1, s2 = random_spd(d, rng), random_spd(d, rng)
    covmean = linalg.sqrtm(s1 @ s2).real
    ref = np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)


def test_frechet_of_sampled_gaussians_approaches_truth():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20000, 3))
    y = rng.standard_normal((20000, 3)) * 2 + 1
    fid = frechet_distance(*feature_stats(x), *feature_stats(y))
    assert fid == pytest.approx(3 * 1 + 3 * (2 - 1) ** 2, rel=0.05)  # |dmu|^2 = 3, sum (sqrt(4) - 1)^2 = 3


def test_kid_matches_direct_unbiased_estimator():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 5)), rng.standard_normal((40, 5)) + 0.5
    d = 5

    def k(a, b):
        return (a @ b / d + 1) ** 3

    n = 40
    direct = (sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j)
              + sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)) / (n * (n - 1))
    direct -= 2 * sum(k(x[i], y[j]) for i in range(n) for j in range(n)) / n**2
    # One subset holding every sample reproduces the direct O(n^2) estimator exactly.
    assert kernel_inception_distance(y, x, num_subsets=1, max_subset_size=n) == pytest.approx(direct, rel=1e-10)
    # Unbiased: same-distribution sets score ~0 next to a shifted pair.
    same = rng.standard_normal((2000, 5))
    shifted = kernel_inception_distance(same[:1000], same[1000:] + 0.5, num_subsets=20)
    assert abs(kernel_inception_distance(same[:1000], same[1000:], num_subsets=20)) < 0.05 * shifted


def test_inception_score_on_hand_built_logits():
    k = 10
    confident = np.full((100, k), -50.0)
    confident[np.arange(100), np.arange(100) % k] = 50.0  # one-hot, uniform over classes
    mean, std = inception_score(confident, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std < 1e-6
    uniform = np.zeros((100, k))
    assert inception_score(uniform, splits=10)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="logits"):
        inception_score(np.zeros((5, k)), splits=10)
