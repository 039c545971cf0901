"""The paired-seeds summary against closed forms and scipy's permutation test, and the
experiment script that uses it (experiments/paired_seeds.py)."""
from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
from scipy import stats

from tri3d.metrics import paired
from tri3d.metrics.paired import paired_difference, sign_flip_p_value
from tri3d.runs.config import preset, with_overrides


def test_p_value_of_all_positive_differences_is_two_patterns_in_two_to_the_n():
    # only the all-plus and all-minus patterns are as far from 0 as the measured mean
    for n in (1, 3, 5, 8):
        d = np.linspace(0.01, 0.2, n)
        assert sign_flip_p_value(d) == pytest.approx(2 / 2**n, abs=0)


def test_p_value_counts_ties():
    # |d| = (1, 1): patterns (+,+), (-,-) have |mean| 1, the mixed ones 0
    assert sign_flip_p_value(np.array([1.0, 1.0])) == 0.5
    # the measured mean of (1, -1, 0) is 0: every pattern is as far from 0
    assert sign_flip_p_value(np.array([1.0, -1.0, 0.0])) == 1.0


@pytest.mark.parametrize("n", [4, 9, 12])
def test_p_value_matches_scipy_exact_paired_permutation_test(n):
    rng = np.random.default_rng(n)
    control = rng.normal(0.4, 0.05, n)
    variant = control + rng.normal(0.03, 0.08, n)
    ref = stats.permutation_test((variant, control), lambda x, y, axis: np.mean(x - y, axis=axis),
                                 permutation_type="samples", alternative="two-sided", n_resamples=np.inf)
    assert sign_flip_p_value(variant - control) == pytest.approx(ref.pvalue, rel=1e-12)


def test_monte_carlo_p_value_agrees_with_the_exact_one(monkeypatch):
    rng = np.random.default_rng(3)
    d = rng.normal(0.02, 0.08, 14)
    exact = sign_flip_p_value(d)
    monkeypatch.setattr(paired, "EXACT_MAX_PAIRS", 10)
    sampled = sign_flip_p_value(d)
    assert 0.05 < exact < 0.95
    # binomial sampling error of MONTE_CARLO_FLIPS draws: 4 standard deviations
    assert abs(sampled - exact) < 4 * math.sqrt(exact * (1 - exact) / paired.MONTE_CARLO_FLIPS)


def test_summary_against_closed_forms():
    control = [0.377, 0.420, 0.354, 0.347, 0.396, 0.471]
    variant = [0.439, 0.473, 0.473, 0.342, 0.267, 0.464]
    d = [v - c for v, c in zip(variant, control)]
    s = paired_difference(control, variant)
    assert s.n == 6 and (s.above, s.below) == (3, 3)
    assert s.mean == pytest.approx(statistics.fmean(d), rel=1e-12)
    assert s.sd == pytest.approx(statistics.stdev(d), rel=1e-12)
    assert s.control_mean == pytest.approx(statistics.fmean(control), rel=1e-12)
    assert s.variant_mean == pytest.approx(statistics.fmean(variant), rel=1e-12)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert s.seeds_for_power == math.ceil((z * statistics.stdev(d) / abs(statistics.fmean(d))) ** 2)


def test_seeds_for_power_is_never_below_what_the_sign_flip_test_can_reach():
    # (z * sd / mean)^2 = (2.80 * 0.1414 / 0.2)^2 = 3.9, but 5 seeds give p >= 2 / 32 > 0.05
    s = paired_difference([0.0, 0.0], [0.1, 0.3])
    assert s.seeds_for_power == 6
    assert min(n for n in range(1, 20) if 2 / 2**n <= 0.05) == paired.MIN_SEEDS_FOR_5_PERCENT


def test_normal_quantiles():
    assert paired.Z_TWO_SIDED_5 == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)
    assert paired.Z_POWER_80 == pytest.approx(stats.norm.ppf(0.8), rel=1e-12)


def test_a_seed_scored_the_same_is_neither_above_nor_below():
    s = paired_difference([0.3, 0.4, 0.5], [0.3, 0.5, 0.4])
    assert (s.above, s.below) == (1, 1)


def test_one_pair_and_no_difference_have_no_power_estimate():
    one = paired_difference([0.3], [0.5])
    assert math.isnan(one.sd) and one.seeds_for_power is None and one.p_value == 1.0
    assert paired_difference([0.3, 0.4], [0.3, 0.4]).seeds_for_power is None


@pytest.mark.parametrize("control, variant", [([0.1, 0.2], [0.1]), ([], []), ([0.1, float("nan")], [0.1, 0.2])])
def test_bad_score_lists_are_refused(control, variant):
    with pytest.raises(ValueError, match="control and variant"):
        paired_difference(control, variant)


# ---------------------------------------------------------------- experiments/paired_seeds.py
@pytest.fixture
def tool(load_experiment):
    return load_experiment("paired_seeds")


def test_seed_lists_and_ranges(tool):
    assert tool.parse_seeds(["0-3", "7", "2", "10-11"]) == [0, 1, 2, 3, 7, 10, 11]
    for bad in ("a", "3-1", "-1", "1-x"):
        with pytest.raises(ValueError, match="--seeds"):
            tool.parse_seeds([bad])


def test_an_experiment_folder_keeps_its_arms(tool, tmp_path):
    control = preset("tiny")
    variant = with_overrides(control, ["lr_G=0.006"])
    tool.claim_arms(tmp_path, {"control": control, "variant": variant})
    assert json.loads((tmp_path / "variant.json").read_text())["lr_G"] == 0.006
    tool.claim_arms(tmp_path, {"control": control, "variant": variant})  # the same experiment again
    with pytest.raises(ValueError, match="variant.json holds another variant config"):
        tool.claim_arms(tmp_path, {"control": control, "variant": with_overrides(control, ["lr_G=0.005"])})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.json", "variant.json"]


def test_the_table_pairs_seeds_both_arms_finished(tool):
    keys = [k for k, _ in tool.SCORES]
    results = {("control", 0): dict.fromkeys(keys, 0.25), ("variant", 0): dict.fromkeys(keys, 0.5),
               ("control", 1): dict.fromkeys(keys, 0.5), ("variant", 1): dict.fromkeys(keys, 1.0),
               ("control", 2): dict.fromkeys(keys, 0.5)}  # seed 2's variant has not finished
    text = tool.table(results, [0, 1, 2])
    assert text.splitlines()[0] == "seeds 0 1"
    row = next(line for line in text.splitlines() if line.startswith("| depth-only class accuracy"))
    # differences 0.25 and 0.5: mean 0.375, SD 0.177; both above; p = 2 / 4
    assert row == ("| depth-only class accuracy | 0.25 / 0.5 (0.375) | 0.5 / 1 (0.75) | +0.375 (0.18) | 2 / 0 "
                   "| 0.5 | 6 |")
    assert tool.table(results, [2]) == "no seed has both arms scored yet"


def test_a_killed_run_resumes_from_the_newest_run_with_a_snapshot(tool, tmp_path):
    root = tmp_path / "variant-seed3"
    assert tool.newest_run(root) is None  # nothing yet: a fresh run
    (root / "00000-tiny" / "snapshot-00000250").mkdir(parents=True)
    (root / "00001-tiny").mkdir()  # killed before its first snapshot
    assert tool.newest_run(root) == root / "00000-tiny"
    (root / "00002-tiny" / "snapshot-00000500").mkdir(parents=True)
    assert tool.newest_run(root) == root / "00002-tiny"


def test_arms_are_loaded_without_a_time_cap(tool, tmp_path):
    """A capped preset or config would give each arm the kimg the machine's load allowed."""
    capped = with_overrides(preset("tiny"), ["max_minutes=9"])
    path = tmp_path / "capped.json"
    path.write_text(capped.to_json())
    from_file, from_preset = tool.load_config(str(path), "--variant"), tool.load_config("tiny", "--control")
    assert from_file.max_minutes == 0.0 and from_preset.max_minutes == 0.0
    assert from_file.total_kimg == capped.total_kimg
    with pytest.raises(ValueError, match="^--variant: 'nope' is neither a preset"):
        tool.load_config("nope", "--variant")
