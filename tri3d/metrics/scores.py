"""Score formulas on detector outputs (float64 numpy).

- FID: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, with ``tr (S1 S2)^(1/2)``
  computed as the sum of square roots of the eigenvalues of ``S1^(1/2) S2 S1^(1/2)``
  (symmetric PSD, so no complex sqrtm is needed).
- KID: unbiased MMD^2 with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``,
  averaged over random subsets (100 subsets of at most 1000, as StyleGAN's metrics).
- IS: ``exp(E_x KL(p(y|x) || p(y)))`` per split, mean and std over splits.
"""
from __future__ import annotations

import numpy as np


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # [N, D] -> mu [D], sigma [D, D]
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, D], got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


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


def inception_score(logits: np.ndarray, *, splits: int = 10) -> tuple[float, float]:
    """IS from classifier logits ``[N, K]``: (mean, std) over ``splits`` contiguous splits."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or logits.shape[0] < splits:
        raise ValueError(f"logits must be [N >= splits, K], got {logits.shape} with splits={splits}")
    logp = logits - logits.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    scores = []
    for part_logp, part_p in zip(np.array_split(logp, splits), np.array_split(p, splits)):
        log_marginal = np.log(part_p.mean(axis=0) + 1e-30)
        kl = (part_p * (part_logp - log_marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
