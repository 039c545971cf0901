"""FID / KID / IS against closed forms, scipy and direct computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
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


def test_feature_stats_divide_by_n_as_stylegan2_ada():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 3)) * [1.0, 2.0, 0.5] + [1.0, -2.0, 3.0]
    mu, sigma = feature_stats(x)
    n = x.shape[0]
    naive = np.zeros((3, 3))
    for row in x:  # (1/N) sum (x - mu)(x - mu)^T, written out
        d = row - x.sum(axis=0) / n
        naive += np.outer(d, d) / n
    np.testing.assert_allclose(mu, x.sum(axis=0) / n, rtol=1e-14)
    np.testing.assert_allclose(sigma, naive, rtol=1e-12, atol=1e-14)
    # N-1 (np.cov's default) would be 7/6 times larger.
    assert not np.allclose(sigma, np.cov(x, rowvar=False))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_inception_score_on_hand_built_probabilities():
    k = 10
    onehot = np.zeros((100, k))
    onehot[np.arange(100), np.arange(100) % k] = 1.0  # confident, uniform over classes
    mean, std = inception_score(onehot, splits=10)
    assert mean == pytest.approx(k, rel=1e-12) and std < 1e-12
    assert inception_score(np.full((100, k), 1 / k), splits=10)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="probabilities"):
        inception_score(np.zeros((5, k)), splits=10)
    with pytest.raises(ValueError, match="softmax"):
        inception_score(np.random.default_rng(0).standard_normal((20, k)), splits=10)


def test_inception_score_splits_at_stylegan2_ada_boundaries():
    rng = np.random.default_rng(4)
    n, k, splits = 23, 5, 10  # 23 is not divisible by 10: boundaries i * 23 // 10
    p = _softmax(rng.standard_normal((n, k)) * 3)
    scores = []
    for i in range(splits):
        rows = range(i * n // splits, (i + 1) * n // splits)
        marginal = [sum(p[r][j] for r in rows) / len(rows) for j in range(k)]
        kl = sum(sum(p[r][j] * (math.log(p[r][j]) - math.log(marginal[j])) for j in range(k)) for r in rows)
        scores.append(math.exp(kl / len(rows)))
    mean, std = inception_score(p, splits=splits)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-10)
    # numpy's array_split (sizes 3,3,3,2,...) gives another answer: the boundaries matter here.
    other = []
    for part in np.array_split(p, splits):
        m = part.mean(axis=0)
        other.append(np.exp((part * (np.log(part) - np.log(m))).sum(axis=1).mean()))
    assert abs(np.mean(other) - mean) > 1e-6


def test_confusion_rows_counts_each_class_s_views_by_label():
    from tri3d.metrics.evaluate import confusion_rows

    classes = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 0, 3, 1, 1, 3, 2])
    rows = confusion_rows(predicted, classes, num_classes=4, num_labels=4)
    assert rows == [[0.5, 0.25, 0.0, 0.25], [0.0, 0.5, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
