"""Score formulas on detector outputs (float64 numpy).

- FID: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, with ``tr (S1 S2)^(1/2)``
  computed as the sum of square roots of the eigenvalues of ``S1^(1/2) S2 S1^(1/2)``
  (symmetric PSD, so no complex sqrtm is needed). The covariances divide by N (raw second
  moments minus the outer product of the mean), as StyleGAN2-ADA's statistics do.
- KID: unbiased MMD^2 with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``,
  averaged over random subsets (100 subsets of at most 1000, as StyleGAN's metrics).
- IS: ``exp(E_x KL(p(y|x) || p(y)))`` per split on the detector's class probabilities,
  split ``i`` holding rows ``[i * N // splits, (i + 1) * N // splits)`` (StyleGAN2-ADA's
  boundaries); mean and std over splits.
"""
from __future__ import annotations

import numpy as np


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # [N, D] -> mu [D], sigma [D, D]
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, D], got {features.shape}")
    mean = features.mean(axis=0)
    return mean, features.T @ features / features.shape[0] - np.outer(mean, mean)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    root = _psd_sqrt(s1)
    cross = np.linalg.eigvalsh(root @ s2 @ root)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(np.square(mu1 - mu2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, *, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased KID between two feature sets ``[N, D]`` and ``[M, D]``."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D, got {real.shape} and {fake.shape}")
    n = min(real.shape[0], fake.shape[0], max_subset_size)
    if n < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], n, replace=False)]
        y = real[rng.choice(real.shape[0], n, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (n * (n - 1)) - 2 * kxy.mean()
    return float(total / num_subsets)


def inception_score(probabilities: np.ndarray, *, splits: int = 10) -> tuple[float, float]:
    """IS from class probabilities ``[N, K]`` (rows sum to 1): (mean, std) over ``splits``."""
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or p.shape[0] < splits:
        raise ValueError(f"probabilities must be [N >= splits, K], got {p.shape} with splits={splits}")
    if p.min() < 0 or not np.allclose(p.sum(axis=1), 1, atol=1e-3):
        raise ValueError("probabilities must be non-negative rows that sum to 1 (apply softmax to logits first)")
    n = p.shape[0]
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        seen = part > 0  # 0 * log 0 = 0
        kl = part * (np.log(np.where(seen, part, 1.0)) - np.log(np.where(seen, marginal, 1.0)))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
