"""Reporting: everything a run writes besides its snapshots: ``config.json``, the
``stats.jsonl`` rows (and TensorBoard scalars), sample grids, ``metrics.jsonl`` with its
learning curve, and the ranks' parameter checksums."""
from __future__ import annotations

import json
import math
import resource
from pathlib import Path

import torch
import torch.nn.functional as F

from tri3d.export import image_grid, save_png
from tri3d.render.camera import sample_multiview_poses
from tri3d.runs.config import TrainConfig
from tri3d.train.distributed import DistEnv, all_reduce_mean_, barrier
from tri3d.utils.timing import StageTimer


class Reporter:
    """Writes a run's logs and pictures; rank 0 writes, every rank joins the reductions.

    Args:
        cfg: the run configuration (written as ``config.json``).
        run_dir: the run folder.
        dist: the process group's description.
        device: this rank's device.
    """

    def __init__(self, cfg: TrainConfig, run_dir: Path, dist: DistEnv, device: torch.device):
        self.cfg, self.run_dir, self.dist, self.device = cfg, run_dir, dist, device
        self._tb = None
        self._heldout: tuple[torch.Tensor, torch.Tensor] | None = None  # judges' held-out reals, read once

    def start(self) -> None:
        """Write ``config.json`` and open TensorBoard (when installed)."""
        if not self.dist.is_main:
            return
        (self.run_dir / "config.json").write_text(self.cfg.to_json())
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir))
        except ImportError:
            self._tb = None

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    def log(self, window: list[dict], *, timer: StageTimer, step: int, kimg: float, nimg: int, images: int,
            seconds: float, nonfinite_steps: int, neural_resolution: int) -> None:
        """One ``stats.jsonl`` row: the means of ``window`` (the steps since the last row,
        averaged over ranks), stage times, throughput and peak memory. Strict JSON: a
        non-finite mean is ``null``."""
        keys = sorted({k for s in window for k in s})
        row = {k: sum(s[k] for s in window if k in s) / sum(1 for s in window if k in s) for k in keys}
        if self.dist.enabled:  # every rank saw a slice of the batch: log the global means
            values = torch.tensor([row[k] for k in keys], dtype=torch.float64, device=self.device)
            row = dict(zip(keys, all_reduce_mean_(values).tolist()))
        row["nonfinite_steps"] = float(nonfinite_steps)  # the same on every rank (skips are agreed)
        dt = max(seconds, 1e-9)
        steps = max(len(window), 1)
        row.update({f"time_{k}_ms": v / steps for k, v in timer.summary().items()})
        peak = torch.tensor([peak_memory_mb(self.device)], dtype=torch.float64, device=self.device)
        if self.dist.enabled:
            peaks = [torch.zeros_like(peak) for _ in range(self.dist.world_size)]
            torch.distributed.all_gather(peaks, peak)
            row["peak_memory_mb_per_rank"] = [p.item() for p in peaks]
        row.update(step=step, kimg=kimg, sec_per_kimg=dt / max(images / 1000, 1e-9), images_per_s=images / dt,
                   peak_memory_mb=peak.item(), neural_resolution=neural_resolution)
        if not self.dist.is_main:
            return
        row = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
        with open(self.run_dir / "stats.jsonl", "a") as f:  # strict JSON: a non-finite mean is null
            f.write(json.dumps(row, allow_nan=False) + "\n")
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)):  # null (non-finite) values are not plotted
                    self._tb.add_scalar(k, v, nimg)

    @torch.no_grad()
    def save_grid(self, G_ema, intrinsics: torch.Tensor, path: Path) -> Path:
        """Multi-view grid (rgb | depth per view) of the EMA generator for fixed latents."""
        n, cfg = self.cfg.grid_objects, self.cfg
        g = torch.Generator().manual_seed(123)  # never touches the training RNG stream
        z = torch.randn(n, cfg.G.z_dim, generator=g).to(self.device)
        c = (torch.arange(n) % cfg.G.num_classes).to(self.device) if cfg.G.num_classes > 0 else None
        cams = sample_multiview_poses(n, 3, cfg.camera_radius, 0.0, 0.0, generator=g).to(self.device)
        with G_ema.deterministic_rendering():
            out = G_ema(z, c, cams, intrinsics, noise_mode="const")
        depth = out["depth"]
        if depth.shape[-1] != out["image"].shape[-1]:
            depth = F.interpolate(depth.flatten(0, 1), size=out["image"].shape[-2:], mode="nearest").unflatten(0, depth.shape[:2])
        return save_png(image_grid(out["image"], depth), path)

    def run_metrics(self, G_ema, dataset, snapshot: Path, step: int, kimg: float, D=None) -> dict | None:
        """Score the EMA generator (``metrics_detector``) into ``metrics.jsonl`` and redraw
        the learning curve; every rank renders its share, rank 0 gathers, scores and writes.
        With the shapes judges and a class-conditional ``D``, also ``d_class_accuracy``: D's
        own class accuracy on the judges' held-out real images, the class signal G follows
        with the class loss."""
        from tri3d.export.plot import plot_learning_curve
        from tri3d.metrics.detector import load_metric_detectors
        from tri3d.metrics.evaluate import append_jsonl, evaluate

        cfg = self.cfg
        if self.dist.enabled and cfg.metrics_detector == "shapes" and not self.dist.is_main:
            barrier()  # rank 0 trains (or loads) the cached shapes judges first
        detector, depth_judge = load_metric_detectors(cfg.metrics_detector, dataset=dataset, device=self.device,
                                                      judge=cfg.metrics_judge)
        if self.dist.enabled and cfg.metrics_detector == "shapes" and self.dist.is_main:
            barrier()
        result = evaluate(G_ema, dataset, detector, depth_judge=depth_judge, num_gen=cfg.metrics_num_gen,
                          radius=cfg.camera_radius, fov_deg=cfg.fov_deg)
        if result is None:
            return None
        result.update(snapshot=str(snapshot), step=step, kimg=kimg)
        if D is not None and cfg.metrics_detector == "shapes" and cfg.D.num_classes > 0:
            images, labels = self._heldout_reals()
            raw = cfg.G.neural_rendering_resolution if cfg.D.dual else None
            result["d_class_accuracy"] = d_class_accuracy(D, images, labels, raw_resolution=raw)
        append_jsonl(self.run_dir / "metrics.jsonl", result)
        plot_learning_curve(self.run_dir)
        return result

    def _heldout_reals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The judges' held-out real images ``[N, 3, R, R]`` in [-1, 1] and labels ``[N]``
        on this rank's device (rendered with the judges; read once per run)."""
        if self._heldout is None:
            from tri3d.metrics.shapes_judges import heldout_images

            images, labels = heldout_images(self.cfg.G.image_resolution, self.cfg.metrics_judge)
            self._heldout = (images.float() / 127.5 - 1).to(self.device), labels.to(self.device)
        return self._heldout

    @torch.no_grad()
    def record_rank_checksums(self, G: torch.nn.Module, D: torch.nn.Module) -> None:
        """With several ranks, rank 0 writes every rank's G/D parameter checksum to
        ``ranks.json`` (they must be identical: DDP keeps the replicas in sync) and its
        intra-op thread count."""
        if not self.dist.enabled:
            return
        local = torch.tensor([*(sum(p.double().sum().item() for p in m.parameters()) for m in (G, D)),
                              torch.get_num_threads()], dtype=torch.float64, device=self.device)
        gathered = [torch.zeros_like(local) for _ in range(self.dist.world_size)]
        torch.distributed.all_gather(gathered, local)
        if self.dist.is_main:
            (self.run_dir / "ranks.json").write_text(json.dumps({"G": [g[0].item() for g in gathered],
                                                                 "D": [g[1].item() for g in gathered],
                                                                 "threads": [int(g[2].item()) for g in gathered]}))


@torch.no_grad()
def d_class_predictions(D,  # a class-conditional Discriminator
                        images: torch.Tensor,  # [N, 3, R, R] real images in [-1, 1]
                        raw_resolution: int | None = None,  # a dual D's raw input side (None: not dual)
                        batch: int = 256,  # a multiple of the minibatch-std group, as D is trained
                        ) -> torch.Tensor:  # [N]
    """The label under which D's projection scores each image highest (``argmax_c D(x, c)``)."""
    from tri3d.train.loss import real_raw_images

    predictions = []
    for start in range(0, len(images), batch):
        x = images[start:start + batch]
        raw = None if raw_resolution is None else real_raw_images(x, raw_resolution, 0.0)
        predictions.append(D(x, None, raw, all_classes=True).argmax(dim=1))
    return torch.cat(predictions)


def d_class_accuracy(D, images: torch.Tensor,  # [N, 3, R, R] real images in [-1, 1]
                     labels: torch.Tensor,  # [N]
                     raw_resolution: int | None = None, batch: int = 256) -> float:
    """How often D's projection scores a real image highest under its own label
    (``d_class_predictions``). Near chance, D gives G no class signal to follow."""
    return float((d_class_predictions(D, images, raw_resolution, batch) == labels).float().mean())


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory, or the process's peak resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
