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
from safetensors.torch import load_file, save_file
from torch import nn

SNAPSHOT_RE = re.compile(r"^snapshot-(\d+)$")
WEIGHT_FILES = ("G", "G_ema", "D")


def save_snapshot(run_dir: str | Path, step: int, config: dict, modules: dict[str, nn.Module],
                  train_state: dict) -> Path:
    """Write ``run_dir/snapshot-<step>`` atomically and return its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"snapshot-{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-snapshot-", dir=run_dir))
    try:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        for name, module in modules.items():
            state = {k: v.detach().contiguous().cpu().clone() for k, v in module.state_dict().items()}
            save_file(state, str(tmp / f"{name}.safetensors"))
        torch.save(train_state, tmp / "train_state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def find_snapshot(path: str | Path) -> Path:
    """``path`` itself if it is a snapshot, else the newest complete snapshot in the run folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if (path / "config.json").exists() and (path / "train_state.pt").exists():
        return path
    snaps = sorted((p for p in path.iterdir() if p.is_dir() and SNAPSHOT_RE.match(p.name)), key=lambda p: p.name)
    if not snaps:
        raise FileNotFoundError(f"no snapshot-* folders in {path}")
    return snaps[-1]


def load_weights(snapshot: Path, name: str, module: nn.Module, device: torch.device | str = "cpu") -> None:
    """Load ``<name>.safetensors`` of a snapshot into ``module``."""
    file = snapshot / f"{name}.safetensors"
    if not file.exists():
        raise FileNotFoundError(f"{file} is missing")
    module.load_state_dict(load_file(str(file), device=str(device)))


def load_config(snapshot: Path) -> dict:
    return json.loads((snapshot / "config.json").read_text())


def load_train_state(snapshot: Path) -> dict:
    return torch.load(snapshot / "train_state.pt", map_location="cpu", weights_only=True)
