"""experiments/ablation.py: which finished runs of an ``--out`` a rerun reuses."""
from __future__ import annotations

import pytest


@pytest.fixture
def ablation(load_experiment):
    return load_experiment("ablation")


def test_a_rerun_reuses_only_runs_of_the_same_kimg_distortion_and_d_downsampling(ablation):
    """A row written before ``down_filter`` was recorded trained StyleGAN2's blurred D, so a
    rerun of ``tiny`` (plain stride) must train it again, and one asking for
    ``--down-filter fir`` may reuse it; kimg and the distortion weight count as before."""
    same = ablation.same_setting_as
    old = {"preset": "tiny-eg3d+d", "seed": 0, "kimg": 8.0, "distortion_reg": 1.0}  # no down_filter: "fir"
    new = dict(old, down_filter="none")
    assert not same(old, 8.0, None, None)
    assert same(old, 8.0, None, "fir")
    assert same(new, 8.0, None, None)
    assert not same(new, 8.0, None, "fir")
    assert not same(new, 10.0, None, None)
    assert not same(new, 8.0, 0.0, None)
    assert same(dict(new, distortion_reg=0.0), 8.0, 0.0, None)
    assert not same({"preset": "tiny", "seed": 0, "kimg": 8.0}, 8.0, None, "fir")  # before the distortion loss
