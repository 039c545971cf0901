"""``tri3d bench train``: time a fixed number of training iterations of a preset and
report per-stage milliseconds, images/s, sec/kimg and peak memory."""
from __future__ import annotations

import time

import torch

from tri3d.runs.config import preset
from tri3d.train.loop import Trainer
from tri3d.train.reporting import peak_memory_mb
from tri3d.utils.timing import STAGES


def bench_train(name: str, *, steps: int = 20, warmup: int = 3, batch: int | None = None, device: str = "auto",
                precision: str = "fp32", run_dir: str = "runs/bench") -> dict:
    """Run ``warmup + steps`` iterations on a small shapes set at the preset's resolution
    (the images only feed D; timing does not depend on their content), each with all the
    preset's views (a preset that starts with one view is timed as from its switch on)."""
    cfg = preset(name)
    cfg.device, cfg.precision, cfg.run_dir = device, precision, run_dir
    cfg.shapes_per_class = 8
    cfg.multiview_start_kimg = 0.0  # time the preset's full step: all its views from the first
    if batch is not None:
        cfg.batch = batch
    trainer = Trainer(cfg, progress=False, run_dir=f"{run_dir}/{name}")
    loader = iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=cfg.batch, sampler=torch.utils.data.RandomSampler(
        trainer.dataset, replacement=True, num_samples=(steps + warmup) * cfg.batch)))
    for _ in range(warmup):
        trainer.train_step(*next(loader))
    trainer.timer.summary()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(*next(loader))
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    stage_ms = {k: v / steps for k, v in trainer.timer.summary().items()}
    images = steps * cfg.batch
    return {
        "preset": name, "device": str(trainer.device), "precision": precision, "batch": cfg.batch,
        "views": trainer.views_now(), "steps": steps, "ms_per_step": dt / steps * 1e3, "images_per_s": images / dt,
        "sec_per_kimg": dt / images * 1000, "peak_memory_mb": peak_memory_mb(trainer.device),
        "stage_ms": {k: stage_ms[k] for k in STAGES if k in stage_ms},
    }


def format_table(r: dict) -> str:
    lines = [f"preset {r['preset']} on {r['device']} ({r['precision']}), batch {r['batch']} x {r['views']} views, "
             f"{r['steps']} steps", "", "| stage | ms / step |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in r["stage_ms"].items()]
    lines += [f"| **step** | **{r['ms_per_step']:.2f}** |", "",
              f"images/s {r['images_per_s']:.2f}, sec/kimg {r['sec_per_kimg']:.1f}, "
              f"peak memory {r['peak_memory_mb']:.0f} MB"]
    return "\n".join(lines)
