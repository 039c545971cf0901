"""Two gloo processes on one machine against one process: same trajectory, rank
failures stop the job, snapshots resume on another process count."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tri3d.cli import main
from tri3d.data.shapes import make_shapes_dataset

from tri3d.testing import micro_train_config as micro_config


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    data = make_shapes_dataset(root / "shapes", resolution=16, per_class=4, seed=0)
    # Per-sample draws (synthesis noise, stratified jitter, density-regularization points) are
    # made per rank; with them off, 2 ranks must follow the 1-process trajectory.
    cfg = micro_config(data, root / "runs", batch=8, total_kimg=0.024, snapshot_kimg=0.016, density_reg=0.0,
                       log_every=1, r1_interval=2, noise_mode="const")
    cfg.G.renderer.deterministic = True
    cfg.G.num_classes = cfg.D.num_classes = 5
    path = root / "config.json"
    path.write_text(cfg.to_json())
    return path


def run(config_file, run_dir, *extra):
    assert main(["train", "--config", str(config_file), "--no-progress", "--device", "cpu",
                 "--run-dir", str(run_dir), *extra]) == 0
    (run,) = [p for p in run_dir.iterdir() if p.is_dir()]
    return run


def weights(snapshot):
    return load_file(str(snapshot / "G.safetensors"))


def test_two_processes_match_one_process(config_file, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    one = run(config_file, tmp_path / "one")
    two = run(config_file, tmp_path / "two", "--gpus", "2")
    ranks = json.loads((two / "ranks.json").read_text())
    assert ranks["G"][0] == ranks["G"][1] and ranks["D"][0] == ranks["D"][1]  # replicas identical
    # the cores are shared out, not oversubscribed (each rank would take them all)
    assert ranks["threads"] == [max(1, len(os.sched_getaffinity(0)) // 2)] * 2
    a, b = weights(one / "snapshot-00000003"), weights(two / "snapshot-00000003")
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)
    keys = ("loss_G", "loss_D", "D_real", "D_fake")
    la = [[json.loads(x)[k] for k in keys] for x in (one / "stats.jsonl").read_text().splitlines()]
    lb = [[json.loads(x)[k] for k in keys] for x in (two / "stats.jsonl").read_text().splitlines()]
    assert len(la) == len(lb) == 3
    np.testing.assert_allclose(lb, la, rtol=1e-4, atol=1e-6)  # the 2-rank means are the 1-rank batch's


def test_a_failing_rank_stops_the_job(config_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TRI3D_DEBUG_FAIL_RANK", "1")
    with pytest.raises(Exception, match="rank 1 fails on purpose"):
        main(["train", "--config", str(config_file), "--no-progress", "--device", "cpu",
              "--run-dir", str(tmp_path / "fail"), "--gpus", "2"])


def test_two_rank_snapshot_resumes_on_one_rank(config_file, tmp_path):
    two = run(config_file, tmp_path / "two", "--gpus", "2", "--snapshot-kimg", "0.008")
    snap = two / "snapshot-00000001"
    assert snap.exists()
    two_ranks = [json.loads(x) for x in (two / "stats.jsonl").read_text().splitlines()]
    assert main(["train", "--resume", str(snap), "--no-progress", "--device", "cpu", "--kimg", "0.016"]) == 0
    one_rank = [json.loads(x) for x in (two / "stats.jsonl").read_text().splitlines()]
    # the log was cut back to the snapshot's step and step 2 written again, by one rank;
    # steps 2 of the 2-rank run and of the 1-rank resume agree to fp32 rounding
    assert [r["step"] for r in one_rank] == [1, 2] and one_rank[0] == two_ranks[0]
    assert one_rank[1]["loss_G"] == pytest.approx(two_ranks[1]["loss_G"], rel=1e-4)


def test_metrics_and_peak_memory_are_gathered_over_ranks(config_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TRI3D_CACHE", str(tmp_path / "cache"))
    cfg = json.loads(config_file.read_text())
    cfg.update(metrics_detector="shapes", metrics_num_gen=21)
    path = tmp_path / "metrics_config.json"
    path.write_text(json.dumps(cfg))
    run_dir = run(path, tmp_path / "m", "--gpus", "2")
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 3] and all(r["num_gen"] == 21 and r["fid"] > 0 for r in rows)
    stats = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert all(len(s["peak_memory_mb_per_rank"]) == 2 for s in stats)


def test_a_time_cap_stops_every_rank_at_the_same_step(config_file, tmp_path, capfd):
    """Rank 0's clock decides and broadcasts: both ranks stop after the first step, write
    one snapshot between them, and hold the same weights."""
    two = run(config_file, tmp_path / "two", "--gpus", "2", "--minutes", "1e-9")
    assert "stopped at the time cap (--minutes 1e-09) after 0.01 kimg of 0.024" in capfd.readouterr().out
    assert sorted(p.name for p in two.glob("snapshot-*")) == ["snapshot-00000001"]
    ranks = json.loads((two / "ranks.json").read_text())
    assert ranks["G"][0] == ranks["G"][1] and ranks["D"][0] == ranks["D"][1]
