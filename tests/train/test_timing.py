"""Per-stage timing and `tri3d bench train`."""
from __future__ import annotations

import json
import time

from tri3d.cli import main
from tri3d.utils.timing import StageTimer


def test_stage_timer_accumulates_and_resets():
    timer = StageTimer("cpu")
    for _ in range(2):
        with timer.stage("a"):
            time.sleep(0.01)
    with timer.stage("b"):
        with timer.stage("a"):  # nested stages count in both
            time.sleep(0.01)
    out = timer.summary()
    assert 25 < out["a"] < 200 and 8 < out["b"] < 150 and out["b"] < out["a"]
    assert timer.summary() == {}


def test_bench_train_reports_every_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRI3D_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "train", "--preset", "tiny", "--steps", "2", "--warmup", "1", "--device", "cpu",
                 "--json", str(tmp_path / "b.json")]) == 0
    result = json.loads((tmp_path / "b.json").read_text())
    stages = result["stage_ms"]
    assert set(stages) == {"mapping", "synthesis", "sample+decode", "composite", "importance", "discriminator",
                           "backward", "optimizer"}
    assert sum(v for k, v in stages.items()) <= result["ms_per_step"] * 1.05  # stages fit inside the step
    assert result["images_per_s"] > 0 and result["views"] == 2
    assert "| **step** |" in capsys.readouterr().out
