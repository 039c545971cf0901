"""The training loop at micro size: learning signal, exact resume, crash-safe snapshots."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tri3d.data.shapes import make_shapes_dataset
from tri3d.export.plot import read_metrics
from tri3d.runs import checkpoint
from tri3d.testing import micro_train_config as micro_config
from tri3d.train.loop import Trainer, lr_scale


@pytest.fixture(scope="module")
def shapes16(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", resolution=16, per_class=4, seed=0)


def read_stats(run_dir):
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def test_thirty_steps_lower_the_d_loss_and_stay_finite(shapes16, tmp_path):
    trainer = Trainer(micro_config(shapes16, tmp_path, blur_init_sigma=0.0), progress=False)
    assert trainer.G.config.num_classes == 5  # taken from the dataset
    losses = []
    loader = iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4, shuffle=True,
                                              generator=torch.Generator().manual_seed(0)))
    for _ in range(30):
        try:
            real, c = next(loader)
        except StopIteration:
            loader = iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4, shuffle=True))
            real, c = next(loader)
        losses.append(trainer.train_step(real, c)["loss_D"])
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    for module in (trainer.G, trainer.D, trainer.G_ema):
        assert all(torch.isfinite(p).all() for p in module.parameters())


def test_resume_reproduces_the_next_steps_bit_for_bit(shapes16, tmp_path):
    # 6 steps with a snapshot after step 3, against a resume from that snapshot.
    cfg = micro_config(shapes16, tmp_path / "a", snapshot_kimg=0.012)
    full = Trainer(cfg, run_dir=tmp_path / "a", progress=False)
    full.train()
    snap = tmp_path / "a" / "snapshot-00000003"
    assert snap.exists()
    resumed = Trainer(micro_config(shapes16, tmp_path / "b", snapshot_kimg=0.012), resume=snap,
                      run_dir=tmp_path / "b", progress=False)
    assert resumed.step == 3 and resumed.nimg == 12
    resumed.train()
    a = [r for r in read_stats(tmp_path / "a") if r["step"] > 3]
    b = read_stats(tmp_path / "b")
    keys = ("loss_G", "loss_D", "D_real", "D_fake", "r1", "density_reg")
    assert [r["step"] for r in b] == [4, 5, 6]
    assert [[r.get(k) for k in keys] for r in a] == [[r.get(k) for k in keys] for r in b]
    for p, q in zip(full.G_ema.state_dict().values(), resumed.G_ema.state_dict().values()):
        assert torch.equal(p, q)


def test_views_switch_on_at_multiview_start(shapes16, tmp_path):
    trainer = Trainer(micro_config(shapes16, tmp_path, views=3, multiview_start_kimg=0.008), progress=False)
    assert trainer.views_now() == 1
    trainer.nimg = 8
    assert trainer.views_now() == 3
    real, c = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4)))
    assert trainer.train_step(real, c)["views"] == 3


def test_coverage_is_the_mean_opacity_of_the_views_g_trained_on(shapes16, tmp_path):
    trainer = Trainer(micro_config(shapes16, tmp_path, views=2), progress=False)
    rendered = []
    generate = trainer.generate

    def recording_generate(G, z, c, views):
        image, out = generate(G, z, c, views)
        if G is trainer.G_ddp:
            rendered.append(out["opacity"].detach().clone())  # [B, V, 1, r, r]
        return image, out

    trainer.generate = recording_generate
    real, c = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4)))
    stats = trainer.train_step(real, c)
    (opacity,) = rendered
    assert opacity.shape[:2] == (4, 2)
    per_view = opacity.flatten(2).mean(2)  # every view's own coverage, then their mean
    assert 0 < per_view.min() < per_view.max() < 1
    assert stats["coverage"] == pytest.approx(per_view.mean().item(), rel=1e-6)


@pytest.mark.parametrize("ramp_kimg", [0.0, 0.02])
def test_d_input_centring_ramps_in_over_center_input_rampup_kimg(shapes16, tmp_path, ramp_kimg: float):
    cfg = micro_config(shapes16, tmp_path, center_input_rampup_kimg=ramp_kimg)
    cfg.D.center_input = True
    trainer = Trainer(cfg, progress=False)
    real, c = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4)))
    seen = []  # the share D removed in each of its calls of a step
    trainer.D.register_forward_pre_hook(lambda m, args: seen.append(m.center_fraction))
    for nimg in (0, 5, 15, 20, 40):
        trainer.nimg = nimg
        seen.clear()
        trainer.train_step(real, c)
        expected = min(nimg / 1000 / ramp_kimg, 1.0) if ramp_kimg > 0 else 1.0
        assert seen and all(f == pytest.approx(expected, abs=1e-12) for f in seen)


def test_crash_while_writing_a_snapshot_keeps_the_previous_one(shapes16, tmp_path, monkeypatch):
    cfg = micro_config(shapes16, tmp_path, snapshot_kimg=0.008, total_kimg=0.016)
    trainer = Trainer(cfg, run_dir=tmp_path / "run", progress=False)
    calls = {"n": 0}
    real_save = checkpoint.save_file

    def flaky_save(state, path):
        calls["n"] += 1
        if calls["n"] == 5:  # second snapshot, after its first weights file
            raise KeyboardInterrupt("killed")
        real_save(state, path)

    monkeypatch.setattr(checkpoint, "save_file", flaky_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["snapshot-00000002"]
    assert checkpoint.find_snapshot(run).name == "snapshot-00000002"
    back = Trainer(micro_config(shapes16, tmp_path), resume=run, run_dir=tmp_path / "again", progress=False)
    assert back.step == 2
    for p, q in zip(back.G.parameters(), trainer.G.parameters()):
        assert p.shape == q.shape and torch.isfinite(p).all()


def test_snapshot_of_an_older_format_fails_to_load_naming_the_change(shapes16, tmp_path):
    run = Trainer(micro_config(shapes16, tmp_path, total_kimg=0.004), run_dir=tmp_path / "run",
                  progress=False).train()
    snap = checkpoint.find_snapshot(run)
    config = json.loads((snap / "config.json").read_text())
    assert config.pop(checkpoint.FORMAT_KEY) == checkpoint.FORMAT_VERSION
    assert "preset" in checkpoint.load_config(snap)  # the current format loads
    (snap / "config.json").write_text(json.dumps(config))  # as written before formats were recorded
    with pytest.raises(ValueError, match="format 1.*num_ws indexing.*dual discriminator"):
        Trainer(micro_config(shapes16, tmp_path), resume=run, run_dir=tmp_path / "again", progress=False)
    with pytest.raises(ValueError, match="format 1"):
        checkpoint.load_config(snap)


def test_dual_discrimination_trains_a_super_resolving_generator(shapes16, tmp_path):
    cfg = micro_config(shapes16, tmp_path, r1_interval=1, blur_init_sigma=1.0, blur_fade_kimg=1.0)
    cfg.G.superresolution, cfg.G.neural_rendering_resolution, cfg.G.sr_channels = True, 8, 8
    with pytest.raises(ValueError, match="D.dual"):
        cfg.validate()
    cfg.D.dual = True
    trainer = Trainer(cfg, progress=False)
    assert trainer.D.blocks[0].fromrgb.weight.shape[1] == 6
    seen = []
    trainer.D.register_forward_pre_hook(lambda m, args: seen.append([None if a is None else a.shape for a in args]))
    real, c = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4)))
    stats = trainer.train_step(real, c)
    assert all(math.isfinite(stats[k]) for k in ("loss_G", "loss_D", "r1"))
    # G step: 4 objects x 2 views, raw 8 px; D step: 8 fakes + 4 reals in one forward.
    assert seen[0][2] == (8, 3, 8, 8) and seen[1][0] == (12, 3, 16, 16) and seen[1][2] == (12, 3, 8, 8)


def test_cli_resolves_and_validates_options(capsys):
    from tri3d.cli import main

    assert main(["train", "--preset", "eg3d+g+d+mv", "--views", "2", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["views"] == 2 and cfg["G"]["extra_blocks"] and cfg["G"]["decoder_layers"] == 3
    assert main(["train", "--preset", "eg3d", "--dry-run"]) == 0
    out = capsys.readouterr()
    cfg = json.loads(out.out)
    assert "num_ws 14" in out.err and "dual: image + raw neural rendering" in out.err
    assert "29.31 M" in out.err and "28.39 M" in out.err  # EG3D: 29.3 M (G) and 28.4 M (pose-free D)
    assert not cfg["G"]["extra_blocks"] and cfg["G"]["decoder_layers"] == 1 and cfg["views"] == 1
    with pytest.raises(SystemExit):
        main(["train", "--views", "0", "--dry-run"])
    assert main(["train", "--mirror", "1", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["mirror"] is True
    with pytest.raises(SystemExit):
        main(["train", "--mirror", "yes", "--dry-run"])
    assert "argument --mirror: must be 0 or 1, got yes" in capsys.readouterr().err
    assert main(["train", "--resume", "/nonexistent/run", "--dry-run"]) == 2


def test_metrics_at_each_snapshot(shapes16, tmp_path, monkeypatch):
    from tri3d.cli import main

    monkeypatch.setenv("TRI3D_CACHE", str(tmp_path / "cache"))
    cfg = micro_config(shapes16, tmp_path, snapshot_kimg=0.008, total_kimg=0.016, metrics_detector="shapes",
                       metrics_num_gen=20)
    run = Trainer(cfg, run_dir=tmp_path / "run", progress=False).train()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(r["fid"] > 0 and 0 <= r["class_accuracy"] <= 1 for r in rows)
    assert all(0 <= r["d_class_accuracy"] <= 1 for r in rows)  # D's own, on the judges' held-out reals
    # A snapshot scored after training lands on the run's curve at its own kimg.
    assert main(["metrics", "--ckpt", rows[0]["snapshot"], "--detector", "shapes", "--num-gen", "20"]) == 0
    scored = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert (scored["step"], scored["kimg"]) == (2, 2 * cfg.batch / 1000) == (rows[0]["step"], rows[0]["kimg"])
    assert [r["kimg"] for r in read_metrics(run)] == [0.008, 0.008, 0.016]


def test_bf16_autocast_runs_the_intended_layers_and_stays_finite(shapes16, tmp_path):
    trainer = Trainer(micro_config(shapes16, tmp_path, precision="bf16"), progress=False)
    seen = {}
    trainer.G.synthesis.register_forward_hook(lambda m, i, o: seen.__setitem__("synthesis", o.dtype))
    trainer.G.decoder.register_forward_hook(lambda m, i, o: seen.__setitem__("decoder", o[0].dtype))
    trainer.D.blocks[0].register_forward_hook(lambda m, i, o: seen.__setitem__("D first block", o.dtype))
    trainer.D.out.register_forward_hook(lambda m, i, o: seen.__setitem__("D head", o.dtype))
    loader = iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4, shuffle=True))
    losses = [trainer.train_step(*next(loader)) for _ in range(4)]
    assert seen == {"synthesis": torch.bfloat16, "decoder": torch.float32, "D first block": torch.bfloat16,
                    "D head": torch.float32}
    assert all(np.isfinite(s["loss_G"]) and np.isfinite(s["loss_D"]) for s in losses)
    assert all(torch.isfinite(p).all() for p in trainer.G.parameters())


def _strict_json_rows(path):
    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def test_a_nan_in_d_skips_every_update_and_stops_the_run(shapes16, tmp_path):
    cfg = micro_config(shapes16, tmp_path, snapshot_kimg=1.0, total_kimg=0.04, max_nonfinite_steps=3)
    trainer = Trainer(cfg, run_dir=tmp_path / "run", progress=False)
    initial = {k: v.detach().clone() for k, v in trainer.G.named_parameters()}
    with torch.no_grad():
        trainer.D.out.linear.weight[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="3 training steps in a row had non-finite"):
        trainer.train()
    assert trainer.nonfinite_steps == 3
    for key, value in trainer.G.named_parameters():  # no optimizer update was applied
        assert torch.equal(value, initial[key]), key
    rows = _strict_json_rows(tmp_path / "run" / "stats.jsonl")
    assert rows[0]["loss_G"] is None and rows[-1]["nonfinite_steps"] == 2.0
    # A snapshot never holds non-finite weights: D's poisoned weight is refused, nothing written.
    checkpoint.save_snapshot(tmp_path / "run", 8, cfg.to_dict(), {"G": trainer.G}, {})
    assert all(torch.isfinite(t).all() for t in load_file(str(tmp_path / "run" / "snapshot-00000008" / "G.safetensors")).values())
    with pytest.raises(ValueError, match="refusing to write snapshot-00000009: D.out.linear.weight"):
        checkpoint.save_snapshot(tmp_path / "run", 9, cfg.to_dict(), {"D": trainer.D}, {})
    assert not (tmp_path / "run" / "snapshot-00000009").exists()


def test_one_nonfinite_step_is_skipped_and_training_goes_on(shapes16, tmp_path):
    trainer = Trainer(micro_config(shapes16, tmp_path, total_kimg=0.016), run_dir=tmp_path / "run", progress=False)
    calls = {"n": 0}

    def poison_once(module, args, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 3 else output  # the G step of step 2

    trainer.D.register_forward_hook(poison_once)
    trainer.train()
    assert trainer.nonfinite_steps == 1 and trainer.step == 4
    rows = _strict_json_rows(tmp_path / "run" / "stats.jsonl")
    assert [r["skipped_G"] for r in rows] == [0.0, 1.0, 0.0, 0.0] and [r["skipped_D"] for r in rows] == [0.0] * 4
    assert all(torch.isfinite(p).all() for m in (trainer.G, trainer.G_ema, trainer.D) for p in m.parameters())


def test_a_time_cap_stops_at_the_first_step_past_it_with_a_snapshot(shapes16, tmp_path):
    """A clock that advances 10 s per reading: with a 0.5-minute cap the check after step 3
    reads 30 s and stops there, long before total_kimg (250 steps), and the last step
    has its snapshot; with no cap the clock is never asked."""
    cfg = micro_config(shapes16, tmp_path, total_kimg=1.0, snapshot_kimg=0.008, max_minutes=0.5)
    trainer = Trainer(cfg, run_dir=tmp_path / "capped", progress=False)
    readings = iter(range(0, 10_000, 10))
    trainer.clock = lambda: float(next(readings))
    trainer.train()
    assert trainer.stopped_by_time and trainer.step == 3 and trainer.nimg == 12
    assert [p.name for p in sorted((tmp_path / "capped").glob("snapshot-*"))] == ["snapshot-00000002",
                                                                                    "snapshot-00000003"]
    assert [r["step"] for r in read_stats(tmp_path / "capped")] == [1, 2, 3]

    uncapped = Trainer(micro_config(shapes16, tmp_path, total_kimg=0.008), run_dir=tmp_path / "uncapped",
                       progress=False)
    uncapped.clock = lambda: pytest.fail("the clock was read without a cap")
    uncapped.train()
    assert not uncapped.stopped_by_time and uncapped.step == 2


def test_with_several_ranks_the_time_cap_is_rank_0s_decision(shapes16, tmp_path, monkeypatch):
    """A rank's own clock does not decide: the elapsed time it uses is the one broadcast from rank 0."""
    from tri3d.train.distributed import DistEnv

    trainer = Trainer(micro_config(shapes16, tmp_path), run_dir=tmp_path / "run", progress=False)
    trainer.dist = DistEnv(rank=1, world_size=2)
    rank0_elapsed = {"seconds": 75.5}
    sent = []

    def broadcast(tensor, src):
        sent.append(src)
        tensor.fill_(rank0_elapsed["seconds"])

    monkeypatch.setattr(torch.distributed, "broadcast", broadcast)
    assert trainer.shared_elapsed(3.0) == 75.5  # rank 1's clock says 3 s, rank 0's 75.5 s
    rank0_elapsed["seconds"] = 1.25
    assert trainer.shared_elapsed(500.0) == 1.25
    assert sent == [0, 0]


def test_lr_scale_holds_then_falls_linearly_to_the_floor():
    assert [lr_scale(p, 0.35, 0.25) for p in (0.0, 0.5, 0.65)] == [1.0, 1.0, 1.0]
    assert lr_scale(0.825, 0.35, 0.25) == pytest.approx(0.625)  # halfway through the anneal
    assert lr_scale(1.0, 0.35, 0.25) == pytest.approx(0.25)
    assert lr_scale(0.5, 1.0, 0.2) == pytest.approx(0.6)  # the whole budget
    assert lr_scale(1.0, 0.0, 0.25) == 1.0  # no anneal


def _record_learning_rates(trainer):
    """The learning rate each optimizer step of G and of D used."""
    used = {"G": [], "D": []}
    for name, opt in (("G", trainer.opt_G), ("D", trainer.opt_D)):
        def step(*args, _opt=opt, _name=name, _step=opt.step, **kwargs):
            used[_name].append(_opt.param_groups[0]["lr"])
            return _step(*args, **kwargs)
        opt.step = step
    return used


def test_learning_rates_anneal_over_the_last_share_of_total_kimg(shapes16, tmp_path):
    """8 steps, the last half annealed to 0.2x: step k (from 0) runs at the multiplier of
    k / 8 of the budget spent, 1 up to half, then 1 - 0.8 (k / 8 - 0.5) / 0.5."""
    cfg = micro_config(shapes16, tmp_path, total_kimg=0.032, lr_anneal=0.5, lr_anneal_floor=0.2)
    trainer = Trainer(cfg, run_dir=tmp_path / "run", progress=False)
    used = _record_learning_rates(trainer)
    trainer.train()
    expected = [1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.6, 0.4]
    assert trainer.step == 8
    assert used["G"] == pytest.approx([cfg.lr_G * m for m in expected])
    assert used["D"] == pytest.approx([cfg.lr_D * m for m in expected])
    assert [r["lr_scale"] for r in read_stats(tmp_path / "run")] == pytest.approx(expected)


def test_with_a_time_cap_learning_rates_anneal_over_its_wall_clock(shapes16, tmp_path):
    """A clock that advances 10 s per reading and a 1-minute cap whose last half anneals to
    0.25x: the step after k readings runs at the multiplier of 10 k / 60 of the cap spent,
    and the sixth reading (60 s) stops the run."""
    cfg = micro_config(shapes16, tmp_path, total_kimg=1.0, max_minutes=1.0, lr_anneal=0.5, lr_anneal_floor=0.25)
    trainer = Trainer(cfg, run_dir=tmp_path / "run", progress=False)
    readings = iter(range(0, 10_000, 10))
    trainer.clock = lambda: float(next(readings))
    used = _record_learning_rates(trainer)
    trainer.train()
    assert trainer.stopped_by_time and trainer.step == 6
    assert used["G"] == pytest.approx([cfg.lr_G * m for m in (1.0, 1.0, 1.0, 1.0, 0.75, 0.5)])
    assert trainer.lr_scale == pytest.approx(0.25)


def test_the_time_cap_is_reported_by_the_cli(shapes16, tmp_path, capsys):
    from tri3d.cli import main

    config = tmp_path / "micro.json"
    config.write_text(micro_config(shapes16, tmp_path, total_kimg=1.0).to_json())
    code = main(["train", "--config", str(config), "--minutes", "1e-9", "--run-dir", str(tmp_path / "runs"),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("stopped at the time cap (--minutes 1e-09) after 0.00 kimg of 1\n")
    assert [p.name for p in (tmp_path / "runs").glob("*/snapshot-*")] == ["snapshot-00000001"]


def test_run_folders_are_claimed_atomically_and_presets_are_names(tmp_path, monkeypatch):
    from pathlib import Path

    from tri3d.runs.config import preset
    from tri3d.train.run_state import new_run_dir

    assert new_run_dir(tmp_path, "tiny").name == "00000-tiny"
    real_iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: iter([]))  # another run claimed 00000 after our listing
    assert new_run_dir(tmp_path, "tiny").name == "00001-tiny"
    monkeypatch.setattr(Path, "iterdir", real_iterdir)
    cfg = preset("tiny")
    for bad in ("../escape", "a/b", ".hidden", ""):
        cfg.preset = bad
        with pytest.raises(ValueError, match="invalid training option preset"):
            cfg.validate()


@pytest.mark.parametrize("processes", ["1", "2"])
def test_cli_reports_os_errors_in_one_line(shapes16, tmp_path, capfd, processes):
    """Also from a rank of a spawned job (its one line, the job's status 2, no traceback)."""
    from tri3d.cli import main

    blocker = tmp_path / "runs"
    blocker.write_text("a file where the run folder should go")
    code = main(["train", "--data", str(shapes16), "--run-dir", str(blocker), "--kimg", "0.004", "--device", "cpu",
                 "--no-progress", "--gpus", processes])
    err = capfd.readouterr().err
    assert code == 2 and err.startswith("tri3d train: error: ") and str(blocker) in err
    assert len(err.strip().splitlines()) == 1


def test_damaged_snapshots_give_one_line_errors(shapes16, tmp_path, capsys):
    from tri3d.cli import main

    cfg = micro_config(shapes16, tmp_path, total_kimg=0.004, snapshot_kimg=0.004)
    run = Trainer(cfg, progress=False).train()
    snap = checkpoint.find_snapshot(run)
    weights = snap / "G_ema.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # truncated
    assert main(["generate", "--ckpt", str(snap), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tri3d generate: error: {weights}: unreadable weights") and len(err.splitlines()) == 1
    weights.write_bytes(data)
    config = json.loads((snap / "config.json").read_text())
    config["G"]["z_dim"] = "64"
    (snap / "config.json").write_text(json.dumps(config))
    assert main(["generate", "--ckpt", str(snap), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == f'tri3d generate: error: {snap / "config.json"}: G.z_dim must be an integer, got "64"\n'
    assert not (tmp_path / "out").exists()


def test_resume_in_place_rewrites_the_log_from_the_snapshot_and_clears_stale_temps(shapes16, tmp_path):
    import shutil

    run = tmp_path / "run"
    Trainer(micro_config(shapes16, tmp_path, snapshot_kimg=0.012), run_dir=run, progress=False).train()
    before = read_stats(run)
    assert [r["step"] for r in before] == [1, 2, 3, 4, 5, 6]
    shutil.rmtree(run / "snapshot-00000006")  # killed after logging steps 4-6, before their snapshot...
    (run / ".tmp-snapshot-abc123").mkdir()  # ...while a snapshot and a grid were being written
    (run / ".tmp-snapshot-abc123" / "G.safetensors").write_bytes(b"half")
    (run / ".samples-00000006.png.x1y2.tmp").write_bytes(b"half")
    (run / ".tmp-notes").write_text("not tri3d's")
    with open(run / "stats.jsonl", "a") as f:
        f.write('{"step": 7, "loss')  # a torn row
    trainer = Trainer(micro_config(shapes16, tmp_path, snapshot_kimg=0.012), resume=run, progress=False)
    assert trainer.run_dir == run and trainer.step == 3
    assert [r["step"] for r in read_stats(run)] == [1, 2, 3]
    assert not (run / ".tmp-snapshot-abc123").exists() and not (run / ".samples-00000006.png.x1y2.tmp").exists()
    assert (run / ".tmp-notes").read_text() == "not tri3d's"
    trainer.train()
    after = read_stats(run)
    assert [r["step"] for r in after] == [1, 2, 3, 4, 5, 6]
    assert [r["loss_D"] for r in after] == [r["loss_D"] for r in before]


def test_class_loss_is_the_cross_entropy_of_ds_class_scores_on_reals(shapes16, tmp_path):
    import copy

    from tri3d.train.loss import blur_images, blur_sigma

    cfg = micro_config(shapes16, tmp_path, class_loss=0.5)
    trainer = Trainer(cfg, progress=False)
    D_before = copy.deepcopy(trainer.D)
    real, c = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4, shuffle=True,
                                                    generator=torch.Generator().manual_seed(1))))
    stats = trainer.train_step(real, c)
    images = blur_images(real.float() / 127.5 - 1, blur_sigma(0.0, cfg.blur_init_sigma, cfg.blur_fade_kimg))
    with torch.no_grad():  # the score under every label, one label at a time; log-softmax written out
        scores = torch.cat([D_before(images, torch.full((4,), k)) for k in range(5)], dim=1)
    expected = (scores.logsumexp(dim=1) - scores.gather(1, c[:, None])[:, 0]).mean()
    assert stats["class_D"] == pytest.approx(expected.item(), rel=1e-5)
    assert stats["class_G"] > 0 and math.isfinite(stats["loss_G"])
    assert "class_G" not in Trainer(micro_config(shapes16, tmp_path), progress=False).train_step(real, c)


KILLED_CHILD = """
import sys, time
from tri3d.runs import checkpoint
from tri3d.cli import main

real_save, calls = checkpoint.save_file, [0]

def slow_save(state, path):  # the 2nd snapshot stalls after its first weights file: time to be killed
    real_save(state, path)
    calls[0] += 1
    if calls[0] == 4:
        open(sys.argv[2], "w").close()
        time.sleep(600)

checkpoint.save_file = slow_save
sys.exit(main(["train", "--config", sys.argv[1], "--no-progress", "--device", "cpu"]))
"""


def test_kill_9_while_a_snapshot_is_written_then_resume_matches_an_uninterrupted_run(shapes16, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tri3d.cli import main

    cfg = micro_config(shapes16, tmp_path / "killed", total_kimg=0.024, snapshot_kimg=0.008)
    (tmp_path / "killed.json").write_text(cfg.to_json())
    cfg.run_dir = str(tmp_path / "whole")
    (tmp_path / "whole.json").write_text(cfg.to_json())
    flag = tmp_path / "stalled"
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(tmp_path / "killed.json"), str(flag)])
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the child ended before stalling"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    (run,) = (tmp_path / "killed").iterdir()
    assert any(p.name.startswith(".tmp-snapshot-") for p in run.iterdir())  # killed mid-write
    assert checkpoint.find_snapshot(run).name == "snapshot-00000002"
    assert main(["train", "--resume", str(run), "--no-progress", "--device", "cpu"]) == 0
    assert main(["train", "--config", str(tmp_path / "whole.json"), "--no-progress", "--device", "cpu"]) == 0
    (whole,) = (tmp_path / "whole").iterdir()
    assert not any(p.name.startswith(".") for p in run.iterdir())  # no temp folder or file left
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == sorted(p.name for p in whole.iterdir() if p.is_dir())
    for name in ("G", "G_ema", "D"):
        a = load_file(str(run / "snapshot-00000006" / f"{name}.safetensors"))
        b = load_file(str(whole / "snapshot-00000006" / f"{name}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    keys = ("step", "loss_G", "loss_D", "D_real", "D_fake", "r1", "density_reg")
    assert [[r.get(k) for k in keys] for r in read_stats(run)] == [[r.get(k) for k in keys] for r in read_stats(whole)]
    assert [r["step"] for r in read_stats(run)] == [1, 2, 3, 4, 5, 6]


def test_snapshots_honour_the_umask(shapes16, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        run = Trainer(micro_config(shapes16, tmp_path, total_kimg=0.004), run_dir=tmp_path / "run",
                      progress=False).train()
    finally:
        os.umask(old)
    snap = checkpoint.find_snapshot(run)
    assert snap.stat().st_mode & 0o777 == 0o755  # mkdtemp would leave 0700
    assert {p.name: p.stat().st_mode & 0o777 for p in snap.iterdir()} == {
        name: 0o644 for name in ("config.json", "G.safetensors", "G_ema.safetensors", "D.safetensors", "train_state.pt")}


RACING_CHILD = """
import sys, time
from pathlib import Path
from tri3d.train.run_state import new_run_dir

root, go = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
print(" ".join(new_run_dir(root, "tiny").name for _ in range(300)))
"""


def test_two_processes_claiming_run_folders_at_once_never_share_one(tmp_path):
    import subprocess
    import sys

    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", RACING_CHILD, str(tmp_path / "runs"), str(go)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(2)]
    import time

    time.sleep(2.0)  # both are waiting on the barrier file
    go.touch()
    claimed = [name for child in children for name in child.communicate(timeout=120)[0].split()]
    assert all(child.returncode == 0 for child in children)
    assert len(claimed) == 600 and len(set(claimed)) == 600  # every claim is its own folder
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(claimed)


def test_distortion_loss_adds_its_weighted_gradient_to_g(shapes16, tmp_path, monkeypatch):
    """G's gradient is linear in ``distortion_reg`` (the term is added with its weight, not
    detached), the term is the mean ray distortion of the step's views, and D's step
    does not see it."""
    import tri3d.train.loop as loop

    real, c = next(iter(torch.utils.data.DataLoader(Trainer(micro_config(shapes16, tmp_path), progress=False).dataset,
                                                    batch_size=4)))
    recorded = []
    monkeypatch.setattr(loop, "distortion_loss", lambda d: recorded.append(d) or d.mean())
    grads, stats = [], []
    for weight in (0.0, 1.0, 3.0):
        torch.manual_seed(0)
        trainer = Trainer(micro_config(shapes16, tmp_path, distortion_reg=weight, density_reg=0.0, r1_gamma=0.0),
                          progress=False)
        steps = []
        monkeypatch.setattr(trainer.opt_G, "step", lambda: steps.append([p.grad.clone() for p in trainer.G.parameters()]))
        stats.append(trainer.train_step(real, c))
        grads.append(torch.cat([g.flatten() for g in steps[0]]))
    assert "distortion" not in stats[0] and len(recorded) == 2
    assert recorded[0].shape == (4, 2, 1, 16, 16)  # batch, views, one value per pixel
    assert stats[1]["distortion"] == pytest.approx(recorded[0].mean().item()) and stats[1]["distortion"] > 0
    assert stats[1]["loss_D"] == stats[0]["loss_D"]  # the same fakes: D's loss has no distortion term
    torch.testing.assert_close(grads[2] - grads[0], 3 * (grads[1] - grads[0]), atol=1e-5, rtol=1e-3)
    assert (grads[1] - grads[0]).abs().max() > 1e-4


def test_d_gets_each_steps_fake_views_view_major(shapes16, tmp_path):
    """In G's step and in D's, D's batch starts with the B objects' first views, then
    their second views: no minibatch-std group holds two views of one object. Views are
    coded as the constant 10 b + v (the renderer's graph kept, so G's step runs)."""
    trainer = Trainer(micro_config(shapes16, tmp_path, blur_init_sigma=0.0), progress=False)
    render = trainer.generate

    def coded(G, z, c, views):
        image, out = render(G, z, c, views)
        code = 10 * torch.arange(image.shape[0], dtype=torch.float32)[:, None] + torch.arange(views)
        return image * 0 + code[:, :, None, None, None], out

    trainer.generate = coded
    batches = []
    trainer.D.register_forward_pre_hook(lambda module, args: batches.append(args[0].detach()))
    real, c = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4)))
    trainer.train_step(real, c)
    B, V = 4, trainer.views_now()
    assert V == 2 and [len(b) for b in batches] == [B * V, B * V + B]
    for batch in batches:
        value = batch[: B * V].mean(dim=(1, 2, 3)).round().long()
        assert torch.equal(value // 10, torch.arange(B).repeat(V))  # objects
        assert torch.equal(value % 10, torch.arange(V).repeat_interleave(B))  # views


def test_fewer_objects_than_a_minibatch_std_group_warn(shapes16, tmp_path):
    with pytest.warns(UserWarning, match="2 objects per process, fewer than D's minibatch-std group"):
        Trainer(micro_config(shapes16, tmp_path, batch=2), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(micro_config(shapes16, tmp_path, batch=4), progress=False)
        Trainer(micro_config(shapes16, tmp_path, batch=2, views=1), progress=False)


def test_d_class_accuracy_against_a_counted_answer():
    """``d_class_accuracy`` is the share of images whose highest score is under their own
    label, batch by batch, and a dual D gets the raw image at its resolution: a stand-in D
    whose scores put the argmax on ``x[:, 0, 0, 0]``'s class index (a closed form)."""
    from tri3d.train.reporting import d_class_accuracy

    seen_raw = []

    def stand_in(x, c, raw, all_classes):
        assert c is None and all_classes
        seen_raw.append(None if raw is None else tuple(raw.shape[-2:]))
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 5).float()

    predicted = torch.tensor([0, 1, 2, 3, 4, 4, 4, 0, 1, 2, 3])
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 0, 2, 2, 1])  # 7 of 11 agree
    images = predicted.float()[:, None, None, None].expand(-1, 3, 8, 8).contiguous()
    assert d_class_accuracy(stand_in, images, labels, batch=4) == pytest.approx(7 / 11)
    assert seen_raw == [None, None, None]
    seen_raw.clear()
    assert d_class_accuracy(stand_in, images, labels, raw_resolution=4, batch=11) == pytest.approx(7 / 11)
    assert seen_raw == [(4, 4)]


def test_mirror_shows_d_each_image_and_its_mirror_image(shapes16, tmp_path):
    """``mirror``: the loader draws from the images and their left-right mirror images
    (StyleGAN's --mirror), labels kept; the metrics' dataset stays the unflipped one."""
    from tri3d.data import ImageDataset, XFlipDataset

    images = ImageDataset(shapes16)
    doubled = XFlipDataset(images)
    n = len(images)
    assert len(doubled) == 2 * n
    for i in (0, n - 1):
        img, label = images[i]
        flipped, flipped_label = doubled[n + i]
        assert flipped_label == label and torch.equal(doubled[i][0], img)
        assert torch.equal(flipped, img[:, :, torch.arange(img.shape[2] - 1, -1, -1)])
        assert not torch.equal(flipped, img)  # a shape in general position is not mirror-symmetric on the grid
    with pytest.raises(IndexError, match="out of range"):
        doubled[2 * n]

    trainer = Trainer(micro_config(shapes16, tmp_path, mirror=True), progress=False)
    assert len(trainer.dataset) == n
    originals = {images[i][0].numpy().tobytes(): images[i][1] for i in range(n)}
    mirrored = {images[i][0].flip(-1).numpy().tobytes(): images[i][1] for i in range(n)}
    kinds = set()
    for (real, c), _ in zip(trainer.data_loader(), range(10)):
        for img, label in zip(real, c.tolist()):
            key = img.numpy().tobytes()
            kinds.add("original" if key in originals else "mirrored")
            assert (originals[key] if key in originals else mirrored[key]) == label
    assert kinds == {"original", "mirrored"}
