"""Snapshots: one directory per snapshot with ``config.json``, weights in safetensors and
``train_state.pt`` (optimizers, step, RNG states; loaded with ``weights_only=True``).
Written under a temporary name and renamed, so a crash never leaves a half-written one."""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tri3d.utils.files import chmod_as_created

SNAPSHOT_RE = re.compile(r"^snapshot-(\d+)$")
WEIGHT_FILES = ("G", "G_ema", "D")
# Bumped whenever saved weights stop meaning what they meant; ``config.json`` records it.
FORMAT_KEY = "tri3d_format"
FORMAT_VERSION = 2
FORMAT_CHANGES = {
    2: "StyleGAN2's num_ws indexing (a ToRGB shares the next block's w), EG3D's super-resolution blocks, "
       "StyleGAN2's label mapping in D (8 layers, normalized embedding) and EG3D's dual discriminator",
}


def save_snapshot(run_dir: str | Path, step: int, config: dict, modules: dict[str, nn.Module],
                  train_state: dict) -> Path:
    """Write ``run_dir/snapshot-<step>`` atomically and return its path. Refuses (before
    writing anything) weights that are not finite."""
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise ValueError(f"refusing to write snapshot-{step:08d}: {name}.{key} holds non-finite values")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"snapshot-{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-snapshot-", dir=run_dir))
    try:
        (tmp / "config.json").write_text(json.dumps({**config, FORMAT_KEY: FORMAT_VERSION}, indent=2))
        for name, module in modules.items():
            state = {k: v.detach().contiguous().cpu().clone() for k, v in module.state_dict().items()}
            save_file(state, str(tmp / f"{name}.safetensors"))
        torch.save(train_state, tmp / "train_state.pt")
        chmod_as_created(tmp)  # mkdtemp makes 0700, safetensors 0600: others can read a shared run
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def list_snapshots(run_dir: Path) -> list[Path]:
    """A run's ``snapshot-<step>`` folders, oldest first."""
    return sorted((p for p in run_dir.iterdir() if p.is_dir() and SNAPSHOT_RE.match(p.name)), key=lambda p: p.name)


def find_snapshot(path: str | Path) -> Path:
    """``path`` itself if it is a snapshot, else the newest complete snapshot in the run folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if (path / "config.json").exists() and (path / "train_state.pt").exists():
        return path
    snaps = list_snapshots(path)
    if not snaps:
        raise FileNotFoundError(f"no snapshot-* folders in {path}")
    return snaps[-1]


def check_format(snapshot: Path) -> None:
    """Raise ``ValueError`` naming what changed when ``snapshot`` was written by a tri3d
    whose networks differ from this one's (its weights would not mean the same)."""
    found = _read_config(snapshot).get(FORMAT_KEY, 1)
    if found != FORMAT_VERSION:
        changed = "; ".join(FORMAT_CHANGES[v] for v in range(found + 1, FORMAT_VERSION + 1) if v in FORMAT_CHANGES)
        raise ValueError(f"{snapshot}: written by tri3d snapshot format {found}, this tri3d reads format "
                         f"{FORMAT_VERSION}; the networks changed since ({changed}): retrain, the weights cannot "
                         "be loaded")


def load_weights(snapshot: Path, name: str, module: nn.Module, device: torch.device | str = "cpu") -> None:
    """Load ``<name>.safetensors`` of a snapshot into ``module`` (all keys, or an error)."""
    check_format(snapshot)
    file = snapshot / f"{name}.safetensors"
    if not file.exists():
        raise FileNotFoundError(f"{file} is missing")
    try:
        state = load_file(str(file), device=str(device))
    except SafetensorError as err:  # truncated or not a safetensors file
        raise ValueError(f"{file}: unreadable weights ({err})") from err
    try:
        module.load_state_dict(state)
    except RuntimeError as err:  # missing / unexpected keys, other shapes
        raise ValueError(f"{file}: does not match the network its config.json describes "
                         f"({str(err).splitlines()[0]})") from err


def load_config(snapshot: Path) -> dict:
    """The run config of a snapshot (its format checked, the format key removed)."""
    check_format(snapshot)
    config = _read_config(snapshot)
    config.pop(FORMAT_KEY)
    return config


def _read_config(snapshot: Path) -> dict:
    file = snapshot / "config.json"
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: not valid JSON ({err})") from err
    if not isinstance(config, dict):
        raise ValueError(f"{file}: must hold a JSON object, got {type(config).__name__}")
    return config


def load_train_state(snapshot: Path) -> dict:
    return torch.load(snapshot / "train_state.pt", map_location="cpu", weights_only=True)


STALE_TEMP_DIR = re.compile(r"^\.tmp-snapshot-")  # save_snapshot's temporary folders
STALE_TEMP_FILE = re.compile(r"^\.(samples-\d+\.png|learning_curve\.png|stats\.jsonl|metrics\.jsonl)\..*\.tmp$")


def remove_stale_temps(run_dir: Path) -> list[str]:
    """Delete what a killed run left half-written in its own folder: snapshot temp folders
    and temp files of grids, curves and rewritten logs (names only tri3d creates). Returns
    the names removed."""
    removed = []
    for entry in run_dir.iterdir():
        if entry.is_dir() and STALE_TEMP_DIR.match(entry.name):
            shutil.rmtree(entry)
        elif entry.is_file() and STALE_TEMP_FILE.match(entry.name):
            entry.unlink()
        else:
            continue
        removed.append(entry.name)
    return removed


def truncate_log(path: Path, step: int) -> int:
    """Drop the rows of a ``*.jsonl`` log written after ``step`` (a resumed run writes them
    again), atomically. Returns how many rows were dropped."""
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    kept = [line for line in lines if _row_step(line) <= step]
    if len(kept) == len(lines):
        return 0
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write("".join(line + "\n" for line in kept))
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(lines) - len(kept)


TORN_ROW = 1 << 62  # the step given to a line that is not a JSON row


def _row_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", -1))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return TORN_ROW  # a line torn by a kill: dropped
