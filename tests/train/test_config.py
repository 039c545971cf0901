"""Typed config loading, option validation before anything is created, and the CLI's
one-line errors naming the flag or file."""
from __future__ import annotations

import io
import json

import pytest
import torch

from tri3d.cli import main
from tri3d.runs.config import TrainConfig, preset, with_overrides
from tri3d.train.run_state import resolve_device
from tri3d.utils.progress import LineProgress, progress_bar


def _tiny_dict() -> dict:
    return preset("tiny").to_dict()


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(batch="8"), 'batch must be an integer, got "8"'),
    (lambda d: d.update(batch=True), "batch must be an integer, got true"),
    (lambda d: d.update(total_kimg=float("inf")), "total_kimg must be a finite number, got Infinity"),
    (lambda d: d.update(lr_G=float("nan")), "lr_G must be a finite number, got NaN"),
    (lambda d: d.update(data=3), "data must be a string or null, got 3"),
    (lambda d: d["G"]["renderer"].update(near="x"), 'G.renderer.near must be a finite number, got "x"'),
    (lambda d: d["G"].update(extra_blocks=1), "G.extra_blocks must be true or false, got 1"),
    (lambda d: d.update(sed=0), "unknown option sed"),
    (lambda d: d["D"].update(chanel_max=4), "unknown option D.chanel_max"),
    (lambda d: d.update(G=[1]), "G must be a JSON object, got list"),
])
def test_config_values_are_type_checked(edit, message):
    data = _tiny_dict()
    edit(data)
    with pytest.raises(ValueError, match="^cfg.json: " + message.replace("[", r"\[").replace("]", r"\]") + "$"):
        TrainConfig.from_dict(json.loads(json.dumps(data)), where="cfg.json")


def test_a_config_round_trips_and_ints_are_accepted_as_floats():
    data = _tiny_dict()
    data["total_kimg"] = 3
    cfg = TrainConfig.from_dict(data)
    assert cfg.total_kimg == 3.0 and isinstance(cfg.total_kimg, float)
    assert cfg.G.renderer == preset("tiny").G.renderer
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("field, value, message", [
    ("batch", 10**12, "--batch 1000000000000: must be an integer in [1, 65536]"),
    ("metrics_num_gen", 0, "metrics_num_gen 0: must be in [2, 1000000]"),
    ("device", "gpu", "--device 'gpu': must be auto, cpu, cuda or cuda:N"),
])
def test_out_of_range_values_name_the_flag(field, value, message):
    cfg = preset("tiny")
    setattr(cfg, field, value)
    with pytest.raises(ValueError) as err:
        cfg.validate(names={"batch": "--batch", "device": "--device"})
    assert str(err.value) == "invalid training option " + message


def test_views_beyond_the_min_angle_fail_before_a_run_folder_exists(tmp_path, capsys):
    code = main(["train", "--views", "6", "--run-dir", str(tmp_path / "runs"), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("tri3d train: error: invalid training option --views 6: ")
    assert "min_view_angle_deg 100" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_bad_metrics_detector_fails_before_training(tmp_path, capsys):
    code = main(["train", "--metrics", str(tmp_path / "nope.pt"), "--run-dir", str(tmp_path / "runs"),
                 "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("tri3d train: error: --metrics: detector not found: ")
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_a_preset_or_config(tmp_path, capsys):
    for extra in (["--preset", "imagenet"], ["--config", "x.json"]):
        assert main(["train", "--resume", str(tmp_path), *extra, "--dry-run"]) == 2
        assert "cannot be combined with --resume" in capsys.readouterr().err


def test_loss_weights_are_set_from_the_command_line(capsys):
    """--distortion-reg and --density-reg reach the resolved config (as they do on --resume,
    where they change a run's schedule from its snapshot on)."""
    assert preset("tiny").density_reg > 0 and preset("tiny").distortion_reg != 4
    assert main(["train", "--density-reg", "0", "--distortion-reg", "4", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["density_reg"] == 0.0 and cfg["distortion_reg"] == 4.0


def test_any_option_is_set_from_the_command_line(capsys):
    argv = ["train", "--set", "lr_G=0.006", "--set", "G.renderer.depth_samples=20", "--kimg", "3", "--dry-run"]
    assert main(argv) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["lr_G"], cfg["G"]["renderer"]["depth_samples"], cfg["total_kimg"]) == (0.006, 20, 3.0)
    assert cfg["lr_D"] == preset("tiny").lr_D
    assert main(["train", "--set", "G.renderer.depth_sample=20", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == ("tri3d train: error: --set G.renderer.depth_sample=20: unknown option "
                                               "G.renderer.depth_sample")


def test_the_time_cap_is_a_flag_with_a_range(capsys):
    assert preset("tiny").max_minutes == 9.5
    assert main(["train", "--minutes", "5", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["max_minutes"] == 5.0
    assert main(["train", "--kimg", "30", "--dry-run"]) == 0  # an explicit length lifts the preset's cap
    assert json.loads(capsys.readouterr().out)["max_minutes"] == 0.0
    assert main(["train", "--kimg", "30", "--minutes", "5", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["max_minutes"] == 5.0
    assert main(["train", "--minutes", "1e8", "--dry-run"]) == 2
    assert capsys.readouterr().err == ("tri3d train: error: invalid training option --minutes 100000000.0: must be in "
                                       "[0, 1e+07] (0: no cap)\n")


@pytest.mark.parametrize("argv, message", [
    (["train", "--kimg", "inf", "--dry-run"], "argument --kimg: must be a finite number > 0, got inf"),
    (["train", "--density-reg", "-1", "--dry-run"], "argument --density-reg: must be a finite number >= 0, got -1"),
    (["train", "--workers", "-1", "--dry-run"], "argument --workers: must be an integer >= 0, got -1"),
    (["train", "--minutes", "-1", "--dry-run"], "argument --minutes: must be a finite number >= 0, got -1"),
    (["train", "--precision", "fp16", "--dry-run"], "argument --precision: invalid choice: 'fp16'"),
    (["bench", "train", "--warmup", "-5"], "argument --warmup: must be an integer >= 0, got -5"),
])
def test_bad_flags_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_unavailable_devices_are_named():
    with pytest.raises(ValueError, match="--device cuda: CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="--device must be auto, cpu, cuda or cuda:N, got 'gpu'"):
        resolve_device("gpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_progress_off_a_terminal_is_whole_lines():
    stream = io.StringIO()
    bar = progress_bar(10, initial=2, unit="step", stream=stream, interval=0.0)
    assert isinstance(bar, LineProgress)
    for i in range(8):
        bar.set_postfix(G=f"{i:.3f}")
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 9  # one per update (interval 0) + the final one
    assert lines[0].startswith("step 3/10 (30.0%) ") and lines[-1].startswith("step 10/10 (100.0%) ")
    assert lines[-1].endswith("G=7.000")


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["generate", "--ckpt", str(tmp_path / "none"), "--out", str(a_file)]) == 2
    assert capsys.readouterr().err == f"tri3d generate: error: --out {a_file}: exists and is not a folder\n"
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"tri3d demo: error: --out {tmp_path}: is a folder, expected a PNG path\n"


def test_overrides_reach_nested_options_and_change_nothing_else():
    base = preset("tiny")
    cfg = with_overrides(base, ["lr_G=0.006", "G.background=random", "G.renderer.depth_samples=24",
                                "data=null", "mirror=true"])
    expected = base.to_dict()
    expected.update(lr_G=0.006, data=None, mirror=True)
    expected["G"]["background"] = "random"
    expected["G"]["renderer"]["depth_samples"] = 24
    assert cfg.to_dict() == expected
    assert base.lr_G == 0.004  # the original is not modified


@pytest.mark.parametrize("assignment, message", [
    ("lr_G", "--set: expected KEY=VALUE, got 'lr_G'"),
    ("=1", "--set: expected KEY=VALUE, got '=1'"),
    ("lr=1", "--set lr=1: unknown option lr"),
    ("G.renderer.sample=3", "--set G.renderer.sample=3: unknown option G.renderer.sample"),
    ("lr_G.x=1", "--set lr_G.x=1: lr_G is not a group of options"),
    ("batch=1.5", "--set: batch must be an integer, got 1.5"),
    ("G.renderer.near=x", '--set: G.renderer.near must be a finite number, got "x"'),
    ("batch=0", "--set: invalid training option batch 0"),
    ("G.shading=1.5", "--set: invalid training option G.shading 1.5: must be in [0, 1]"),
])
def test_bad_overrides_name_the_flag_and_the_option(assignment, message):
    with pytest.raises(ValueError) as e:
        with_overrides(preset("tiny"), [assignment])
    assert str(e.value).startswith(message)


def test_the_learning_rate_anneal_is_range_checked(capsys):
    assert main(["train", "--set", "lr_anneal=1.5", "--dry-run"]) == 2
    assert "lr_anneal" in capsys.readouterr().err
    assert main(["train", "--set", "lr_anneal_floor=0", "--dry-run"]) == 2
    assert "lr_anneal_floor" in capsys.readouterr().err
