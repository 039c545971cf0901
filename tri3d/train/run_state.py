"""Run state: the device, the run folder, the data and its order, and what a snapshot
must hold to resume a run exactly (optimizers, step counters, RNG states)."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from tri3d.data import ImageDataset
from tri3d.data.shapes import make_shapes_dataset, shapes_dataset_path
from tri3d.runs import checkpoint
from tri3d.runs.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
    ``ValueError`` naming ``--device`` when the device does not exist on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch is built without CUDA" if torch.version.cuda is None else "no usable GPU or driver"
            raise ValueError(f"--device {name}: CUDA is not available ({why}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def new_run_dir(root: str | Path, preset: str) -> Path:
    """Create and return ``root/<NNNNN>-<preset>``, numbered after the highest existing run.

    The folder is claimed atomically (``mkdir`` without ``exist_ok``): of two runs
    choosing at the same moment, the second moves on to the next number."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ids = [int(p.name.split("-")[0]) for p in root.iterdir() if p.is_dir() and p.name.split("-")[0].isdigit()]
    number = max(ids, default=-1) + 1
    while True:
        path = root / f"{number:05d}-{preset}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            number += 1


def load_dataset(cfg: TrainConfig) -> ImageDataset:
    if cfg.data is None:
        path = shapes_dataset_path(cfg.G.image_resolution, cfg.shapes_per_class, seed=0)
        make_shapes_dataset(path, resolution=cfg.G.image_resolution, per_class=cfg.shapes_per_class)
        return ImageDataset(path)
    return ImageDataset(cfg.data, skip_bad=cfg.skip_bad)


class StepBatchSampler(torch.utils.data.Sampler):
    """Batch indices as a pure function of (seed, step): resuming at any step replays the
    same data order, with or without loader workers. With ``world > 1`` each rank gets its
    slice of the same global batch."""

    def __init__(self, size: int, batch: int, seed: int, start_step: int, rank: int = 0, world: int = 1):
        self.size, self.batch, self.seed, self.start_step = size, batch, seed, start_step
        self.rank, self.world = rank, world

    def __iter__(self):
        step = self.start_step
        local = self.batch // self.world
        while True:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            indices = torch.randint(self.size, (self.batch,), generator=g)
            yield indices[self.rank * local : (self.rank + 1) * local].tolist()
            step += 1


def prepare_run_dir(run_dir: Path, resumed_step: int | None) -> None:
    """Create ``run_dir``, delete what a killed run left half-written in it, and on resume
    cut the logs back to the snapshot's step (the steps after it are logged again)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint.remove_stale_temps(run_dir)
    if resumed_step is not None:
        for log in ("stats.jsonl", "metrics.jsonl"):
            checkpoint.truncate_log(run_dir / log, resumed_step)


def capture_train_state(step: int, nimg: int, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer,
                        shared_rng: torch.Generator, device: torch.device) -> dict:
    """Everything besides the weights that the next step depends on."""
    return {
        "step": step, "nimg": nimg, "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
        "rng_cpu": torch.get_rng_state(), "rng_shared": shared_rng.get_state(),
        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_train_state(state: dict, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer,
                        shared_rng: torch.Generator, device: torch.device) -> tuple[int, int]:
    """Load ``capture_train_state``'s dict back; returns ``(step, nimg)``."""
    opt_G.load_state_dict(state["opt_G"])
    opt_D.load_state_dict(state["opt_D"])
    torch.set_rng_state(state["rng_cpu"])
    shared_rng.set_state(state["rng_shared"])
    if device.type == "cuda" and state.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(state["rng_cuda"], device)
    return int(state["step"]), int(state["nimg"])
