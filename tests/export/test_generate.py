"""`tri3d generate` outputs and its input errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tri3d.cli import main
from tri3d.export.generate import load_generator, parse_int_list
from tri3d.export.mesh import read_ply
from tri3d.models import Discriminator, DiscriminatorConfig, GeneratorConfig, RendererConfig, TriplaneGenerator
from tri3d.runs import checkpoint
from tri3d.runs.config import TrainConfig


@pytest.fixture
def snapshot(tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(fov_deg=30.0, G=GeneratorConfig(
        z_dim=8, w_dim=8, num_classes=3, triplane_resolution=8, triplane_channels=4, channel_base=64, channel_max=8,
        decoder_hidden=8, image_resolution=16, neural_rendering_resolution=16, density_prior=20.0,
        renderer=RendererConfig(depth_samples=6, importance_samples=6, near=2.0, far=3.4)),
        D=DiscriminatorConfig(image_resolution=16, num_classes=3, channel_base=64, channel_max=8, cmap_dim=8))
    G = TriplaneGenerator(cfg.G)
    return checkpoint.save_snapshot(tmp_path / "run", 7, cfg.to_dict(), {"G": G, "G_ema": G, "D": Discriminator(cfg.D)},
                                    {"step": 7})


def test_generate_writes_named_grids_sidecars_videos_and_meshes(snapshot, tmp_path):
    pytest.importorskip("skimage")
    out = tmp_path / "out"
    assert main(["generate", "--ckpt", str(snapshot.parent), "--classes", "1,2", "--seeds", "3-4", "--views", "2",
                 "--out", str(out), "--video", "--mesh", "--mesh-resolution", "24", "--save-density",
                 "--device", "cpu"]) == 0
    for c in (1, 2):
        for s in (3, 4):
            stem = out / f"c{c:04d}-s{s:06d}"
            grid = np.asarray(Image.open(f"{stem}.png"))
            assert grid.shape == (16, 2 * 2 * 16, 3)  # one row, rgb | depth per view
            meta = json.loads(stem.with_suffix(".json").read_text())
            assert meta["class"] == c and meta["seed"] == s and np.asarray(meta["cam2world"]).shape == (2, 4, 4)
            video = out / f"{stem.name}-orbit.gif"
            if video.exists():  # mp4 instead when imageio-ffmpeg is installed
                assert Image.open(video).n_frames == 48
            else:
                assert (out / f"{stem.name}-orbit.mp4").stat().st_size > 0
            density = np.load(f"{stem}-density.npy")
            assert density.shape == (24, 24, 24)
            verts, faces = read_ply(out / f"{stem.name}-mesh.ply")[:2]
            assert (density > 10).any() and (density < 10).any()  # the density prior crosses the iso-level
            assert len(faces) > 0 and np.abs(verts).max() <= 0.5 + 1e-6  # a surface, inside the box
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary left


def test_generate_writes_no_density_unless_asked_and_checks_options_first(snapshot, tmp_path, capsys, monkeypatch):
    pytest.importorskip("skimage")
    out = tmp_path / "out"
    assert main(["generate", "--ckpt", str(snapshot.parent), "--classes", "1", "--seeds", "0", "--out", str(out),
                 "--mesh", "--mesh-resolution", "16", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["c0001-s000000-mesh.ply", "c0001-s000000.json",
                                                    "c0001-s000000.png"]
    assert main(["generate", "--ckpt", str(snapshot.parent), "--save-density", "--out", str(tmp_path / "o2")]) == 2
    assert "--save-density needs --mesh" in capsys.readouterr().err
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "skimage" else real_find_spec(name, *a))
    assert main(["generate", "--ckpt", str(snapshot.parent), "--mesh", "--out", str(tmp_path / "o3")]) == 2
    assert "--mesh needs scikit-image" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()  # checked before anything was rendered or written


def test_generate_bad_inputs_are_named(snapshot, tmp_path, capsys):
    assert main(["generate", "--ckpt", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(snapshot), "--classes", "5", "--out", str(tmp_path / "o")]) == 2
    assert "classes must be in [0, 3)" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(snapshot), "--seeds", "4-2", "--out", str(tmp_path / "o")]) == 2
    assert "--seeds must look like" in capsys.readouterr().err
    assert parse_int_list("0-2,5", "x") == [0, 1, 2, 5]


def test_load_generator_reads_the_ema_or_the_training_weights(snapshot, tmp_path):
    cfg = TrainConfig.from_dict(checkpoint.load_config(snapshot))
    torch.manual_seed(1)
    trained, ema = TriplaneGenerator(cfg.G), TriplaneGenerator(cfg.G)
    snap = checkpoint.save_snapshot(tmp_path / "two", 3, cfg.to_dict(),
                                    {"G": trained, "G_ema": ema, "D": Discriminator(cfg.D)}, {"step": 3})
    for weights, expected in (("G_ema", ema), ("G", trained)):
        G, _, found = load_generator(tmp_path / "two", weights=weights)
        assert found == snap
        for (name, p), q in zip(G.state_dict().items(), expected.state_dict().values()):
            assert torch.equal(p, q), f"{weights}: {name}"
    with pytest.raises(ValueError, match="weights must be"):
        load_generator(snap, weights="D")
