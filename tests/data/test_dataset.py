"""ImageDataset errors, class-folder conversion, the shapes set."""
from __future__ import annotations

import json
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from tri3d.data import ImageDataset
from tri3d.data.convert import convert_class_folders
from tri3d.data.shapes import CLASS_NAMES, make_shapes_dataset


def write_folder(root, n=4, res=8, labels=True):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    entries = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (res, res, 3), dtype=np.uint8)).save(root / f"img{i}.png")
        entries.append([f"img{i}.png", i % 2])
    (root / "dataset.json").write_text(json.dumps({"labels": entries if labels else None}))
    return root


def test_folder_and_zip_load_the_same(tmp_path):
    folder = write_folder(tmp_path / "ds")
    with zipfile.ZipFile(tmp_path / "ds.zip", "w") as zf:
        for p in folder.iterdir():
            zf.write(p, p.name)
    a, b = ImageDataset(folder), ImageDataset(tmp_path / "ds.zip")
    assert len(a) == len(b) == 4 and a.num_classes == 2 and a.resolution == 8
    for i in range(4):
        img, label = a[i]
        assert img.dtype == torch.uint8 and img.shape == (3, 8, 8)
        assert torch.equal(img, b[i][0]) and label == b[i][1] == i % 2
    np.testing.assert_array_equal(img.permute(1, 2, 0).numpy(), np.asarray(Image.open(folder / "img3.png")))


def test_corrupt_truncated_mismatched_and_unlabelled_files_are_named(tmp_path):
    folder = write_folder(tmp_path / "ds")
    (folder / "img1.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="img1.png: unreadable image"):
        ImageDataset(folder)
    folder = write_folder(tmp_path / "ds2")
    data = (folder / "img2.png").read_bytes()
    (folder / "img2.png").write_bytes(data[: len(data) // 2])  # truncated: header fine, pixels missing
    ds = ImageDataset(folder)  # header scan passes...
    with pytest.raises(ValueError, match="img2.png: unreadable image"):
        ds[2]  # ...decoding names the file
    skipping = ImageDataset(folder, skip_bad=True)
    assert len(skipping) == 3 and [n for n, _ in skipping.skipped] == ["img2.png"]
    folder = write_folder(tmp_path / "ds3")
    Image.new("RGB", (16, 16)).save(folder / "img3.png")
    with pytest.raises(ValueError, match="img3.png: resolution 16 differs"):
        ImageDataset(folder)
    folder = write_folder(tmp_path / "ds4")
    meta = json.loads((folder / "dataset.json").read_text())
    meta["labels"] = meta["labels"][:-1]
    (folder / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="img3.png: no label"):
        ImageDataset(folder)
    assert len(ImageDataset(folder, skip_bad=True)) == 3


def test_convert_class_folders(tmp_path):
    src = tmp_path / "src"
    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (src / cls).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (40 + 10 * k, 30), colour).save(src / cls / f"{k}.jpg")
    info = convert_class_folders(src, tmp_path / "out.zip", 16)
    assert info["images"] == 6 and info["classes"] == ["cat", "dog"]
    ds = ImageDataset(tmp_path / "out.zip")
    assert ds.resolution == 16 and ds.num_classes == 2
    img, label = ds[5]
    assert label == 1 and img[2].float().mean() > 200 and img[0].float().mean() < 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "src"]  # no temporary left
    (src / "dog" / "bad.jpg").write_bytes(b"xx")
    with pytest.raises(ValueError, match="bad.jpg: unreadable image"):
        convert_class_folders(src, tmp_path / "out2.zip", 16)
    assert not (tmp_path / "out2.zip").exists()


def test_shapes_set_is_deterministic_and_consistent(tmp_path):
    a = make_shapes_dataset(tmp_path / "a", resolution=16, per_class=3, seed=5)
    b = make_shapes_dataset(tmp_path / "b", resolution=16, per_class=3, seed=5)
    ds = ImageDataset(a)
    assert len(ds) == 3 * len(CLASS_NAMES) and ds.num_classes == len(CLASS_NAMES)
    for i in range(len(ds)):
        assert torch.equal(ds[i][0], ImageDataset(b)[i][0])
    meta = json.loads((a / "dataset.json").read_text())
    assert "cam2world" not in json.dumps(meta["labels"])  # cameras are not labels
    gt = np.load(a / "ground_truth.npz")
    assert gt["depth"].shape == (15, 16, 16) and gt["cam2world"].shape == (15, 4, 4)
    # Covered pixels see the object (within its bounding radius of the origin, mostly in front
    # of it); elsewhere the image is the background colour.
    for i in range(len(ds)):
        img = ds[i][0].permute(1, 2, 0).float().numpy() / 255
        covered = gt["opacity"][i] > 0.99
        empty = gt["opacity"][i] < 1e-3
        assert covered.any() and empty.any()
        d = gt["depth"][i][covered]
        assert (abs(d - 2.7) < 0.5).all() and np.median(d) < 2.7
        np.testing.assert_allclose(img[empty], np.broadcast_to(gt["background"][i], img[empty].shape), atol=1 / 255)


def test_shapes_never_overwrites_what_tri3d_did_not_create(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not empty and not a tri3d shapes set"):
        make_shapes_dataset(foreign, resolution=8, per_class=1, seed=0)
    with pytest.raises(ValueError, match="not empty and not a tri3d shapes set"):
        make_shapes_dataset(foreign, resolution=8, per_class=1, seed=0, rebuild=True)
    assert (foreign / "thesis.tex").read_text() == "precious" and sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]


def test_shapes_with_other_parameters_or_incomplete_is_refused_unless_rebuilt(tmp_path):
    dest = make_shapes_dataset(tmp_path / "s", resolution=8, per_class=1, seed=0)
    assert make_shapes_dataset(dest, resolution=8, per_class=1, seed=0) == dest  # same parameters: reused
    with pytest.raises(ValueError, match="other parameters.*--rebuild"):
        make_shapes_dataset(dest, resolution=8, per_class=2, seed=0)
    make_shapes_dataset(dest, resolution=8, per_class=2, seed=0, rebuild=True)
    assert len(ImageDataset(dest)) == 2 * len(CLASS_NAMES)
    (dest / "images" / "000003.png").unlink()
    with pytest.raises(ValueError, match="incomplete shapes set \\(1 listed images missing"):
        make_shapes_dataset(dest, resolution=8, per_class=2, seed=0)
    make_shapes_dataset(dest, resolution=8, per_class=2, seed=0, rebuild=True)
    assert len(ImageDataset(dest)) == 2 * len(CLASS_NAMES)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".s.lock", "s"]  # no temporary or old copy left


BUILD = """
import sys, time
from pathlib import Path
from tri3d.data.shapes import make_shapes_dataset
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
make_shapes_dataset(sys.argv[1], resolution=8, per_class=6, seed=0, batch=2)
"""


def test_two_processes_building_one_shapes_cache_both_get_the_complete_set(tmp_path):
    import subprocess
    import sys

    dest, go = tmp_path / "cache", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(dest), str(go)]) for _ in range(2)]
    time.sleep(1.0)  # both started and waiting
    go.touch()  # released together
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    meta = json.loads((dest / "dataset.json").read_text())
    assert len(meta["labels"]) == 6 * len(CLASS_NAMES)
    assert all((dest / name).exists() for name, _ in meta["labels"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache.lock", "cache", "go"]


def test_16_bit_grayscale_loads_as_its_visible_content(tmp_path):
    from tri3d.data.convert import center_crop_resize

    values = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)  # 0 .. 63000 of 65535
    (tmp_path / "set").mkdir()
    Image.fromarray(values).save(tmp_path / "set" / "a.png")
    assert Image.open(tmp_path / "set" / "a.png").mode in ("I;16", "I")
    (tmp_path / "set" / "dataset.json").write_text(json.dumps({"labels": [["a.png", 0]]}))
    image = ImageDataset(tmp_path / "set")[0][0]  # [3, 8, 8] uint8
    expected = torch.from_numpy(np.round(values / 257.0).astype(np.uint8))
    for channel in image:
        assert torch.equal(channel, expected)
    with Image.open(tmp_path / "set" / "a.png") as img:  # dataset convert and tri3d invert read through this
        resized = np.asarray(center_crop_resize(img, 8))
    assert abs(int(resized[..., 0].astype(int).mean()) - int(expected.float().mean())) <= 1


@pytest.mark.parametrize("meta, message", [
    ({"labels": [["img0.png", 100000], ["img1.png", 0]]}, r"label 100000 of img0.png is outside \[0, 100000\)"),
    ({"labels": [["img0.png", 10**9]]}, r"label 1000000000 of img0.png is outside"),
    ({"labels": [["img0.png", True]]}, r"labels must be \[path, integer class\] pairs, got \['img0.png', True\]"),
    ({"labels": [["img0.png", 2]], "class_names": ["cat", "dog"]}, r"label 2 of img0.png is outside \[0, 2\) \(2 class_names\)"),
    ([["img0.png", 0]], r"must hold a JSON object with \"labels\", got list"),
    ({"labels": {"img0.png": 0}}, r"labels must be a list of \[path, class\] pairs"),
])
def test_labels_are_validated(tmp_path, meta, message):
    root = write_folder(tmp_path / "ds", n=2)
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"dataset\.json: " + message):
        ImageDataset(root)


def test_labels_within_class_names_load(tmp_path):
    root = write_folder(tmp_path / "ds", n=2)
    (root / "dataset.json").write_text(json.dumps({"labels": [["img0.png", 1], ["img1.png", 0]],
                                                   "class_names": ["a", "b", "c"]}))
    assert ImageDataset(root).num_classes == 3  # the last class has no image but keeps its label


def test_make_field_takes_another_signed_distance():
    """``make_field(..., sdf=)`` shades and densifies the given surface, not the shape's:
    for the plane y = 0.1 every point's normal is +y, so its shade is the closed form
    ``0.35 + 0.65 * light_y`` (unit light) and its density ``-(y - 0.1) * DENSITY_SCALE``
    clamped; the sphere's own field (kind 0) differs at the same points."""
    import math

    import torch

    from tri3d.data.shapes import DENSITY_MAX, DENSITY_MIN, DENSITY_SCALE, LIGHT, make_field

    rot, scale, albedo = torch.eye(3)[None], torch.ones(1), torch.tensor([[0.2, 0.5, 0.9]])
    xyz = torch.rand(1, 64, 3, generator=torch.Generator().manual_seed(0)) - 0.5
    sigma, rgb = make_field(0, rot, scale, albedo, sdf=lambda p: p[..., 1] - 0.1)(xyz)
    shade = 0.35 + 0.65 * LIGHT[1] / math.sqrt(sum(v * v for v in LIGHT))
    torch.testing.assert_close(rgb, (albedo * shade).expand(1, 64, 3))
    expected = (-(xyz[..., 1] - 0.1) * DENSITY_SCALE).clamp(DENSITY_MIN, DENSITY_MAX)
    torch.testing.assert_close(sigma[..., 0], expected)
    own_sigma, own_rgb = make_field(0, rot, scale, albedo)(xyz)
    assert not torch.allclose(own_rgb, rgb) and not torch.allclose(own_sigma, sigma)
