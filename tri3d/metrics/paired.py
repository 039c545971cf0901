"""Paired comparison of two training settings over seeds (float64 numpy).

Runs of two settings with one seed share their data order and random draws up to where
the settings differ; the summary is of the per-seed differences ``variant - control``.
Pairing makes the comparison fair but, on ``tiny``, not much less noisy: a GAN run's
trajectory diverges soon after anything changes, so two settings' scores at one seed are
weakly correlated (depth-only class accuracy at 10 kimg, twelve seeds: SD 0.074 for one
setting, 0.083 for a paired difference, correlation 0.37; docs/learning.md). What
decides is the number of seeds:

- mean and sample standard deviation (``ddof=1``) of the per-seed differences;
- above / below: seeds where the variant scores above / below the control;
- ``p_value``: the two-sided sign-flip randomization test of "the setting changes
  nothing" (under it each difference is as likely negative as positive): the share of
  the ``2^n`` sign patterns whose mean difference is at least as far from 0 as the one
  measured, exact up to ``EXACT_MAX_PAIRS`` seeds, else from ``MONTE_CARLO_FLIPS`` random
  patterns (fixed seed) counting the measured one;
- ``seeds_for_power``: the seeds a two-sided 5% test needs to detect a true difference
  as large as the mean measured here 80% of the time, if the differences spread as
  measured (normal approximation: ``((z_0.975 + z_0.8) sd / |mean|)^2``, rounded up, and
  at least 6: with fewer seeds the sign-flip test cannot reach 5%).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXACT_MAX_PAIRS = 20  # 2^20 sign patterns at most are enumerated
MONTE_CARLO_FLIPS = 200_000
Z_TWO_SIDED_5 = 1.959963984540054  # standard normal quantile 0.975
Z_POWER_80 = 0.8416212335729143  # standard normal quantile 0.8
MIN_SEEDS_FOR_5_PERCENT = 6  # with fewer, the sign-flip test's smallest p-value, 2 / 2^n, is above 0.05


@dataclass(frozen=True)
class PairedDifference:
    n: int  # seeds (pairs)
    control_mean: float
    variant_mean: float
    mean: float  # mean of variant - control
    sd: float  # sample standard deviation of variant - control (nan for one pair)
    above: int  # seeds with variant > control
    below: int  # seeds with variant < control
    p_value: float  # two-sided sign-flip randomization test
    seeds_for_power: int | None  # None for one pair or a mean difference of 0


def sign_flip_p_value(differences: np.ndarray) -> float:  # [n]
    """Two-sided p-value of the sign-flip test of a mean difference of 0 (module docstring)."""
    d = np.asarray(differences, dtype=np.float64)
    n = d.size
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))  # ties in exact arithmetic count as "as far"
    if n <= EXACT_MAX_PAIRS:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1  # [2^n, n] every sign pattern
        means = np.abs(patterns @ np.abs(d)) / n
        return float(np.mean(means >= observed - tolerance))
    rng = np.random.default_rng(0)
    signs = rng.integers(0, 2, size=(MONTE_CARLO_FLIPS, n)) * 2 - 1
    extreme = int(np.sum(np.abs(signs @ np.abs(d)) / n >= observed - tolerance))
    return (extreme + 1) / (MONTE_CARLO_FLIPS + 1)


def paired_difference(control: list[float] | np.ndarray,  # [n] one score per seed
                      variant: list[float] | np.ndarray,  # [n] the same seeds, in the same order
                      ) -> PairedDifference:
    """Summary of ``variant - control`` over seeds (module docstring)."""
    c = np.asarray(control, dtype=np.float64)
    v = np.asarray(variant, dtype=np.float64)
    if c.ndim != 1 or c.shape != v.shape or c.size == 0:
        raise ValueError(f"control and variant must be equal-length 1-D score lists, got {c.shape} and {v.shape}")
    if not (np.isfinite(c).all() and np.isfinite(v).all()):
        raise ValueError("control and variant scores must be finite")
    d = v - c
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
    needed = None
    if d.size > 1 and mean != 0.0:
        needed = max(MIN_SEEDS_FOR_5_PERCENT, math.ceil(((Z_TWO_SIDED_5 + Z_POWER_80) * sd / abs(mean)) ** 2))
    return PairedDifference(n=int(d.size), control_mean=float(c.mean()), variant_mean=float(v.mean()), mean=mean,
                            sd=sd, above=int((d > 0).sum()), below=int((d < 0).sum()),
                            p_value=sign_flip_p_value(d), seeds_for_power=needed)
