"""A/B of one CPU path inside a training step, robust to a machine whose speed drifts.

The project's CPU machine changes speed by up to a third within minutes, so two runs of
``tri3d bench train`` one after the other compare minutes, not code. This script builds
one trainer and alternates, every ``--steps`` steps, between ``impl="auto"`` with the named
C++ paths available and the same steps with them declined (``auto`` then takes the
reference), for ``--blocks`` blocks; it prints each variant's median ms per step and the
median of the per-pair ratios (each B block against the A block just before it).

    python bench/cpu_step_ab.py --off bias_lrelu --blocks 60 --steps 3

Wall clock on the CPU; never run it beside another job.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from contextlib import ExitStack
from unittest import mock

import torch

from tri3d.runs.config import PRESETS, preset
from tri3d.train.loop import Trainer

# name -> modules whose ``cpp_unavailable`` probe is replaced to decline the C++ path
C_PATHS = {
    "bias_lrelu": ["tri3d.ops.bias_act"],
    "sample_triplane": ["tri3d.ops.triplane"],
}


def _declined(device: torch.device) -> str:
    return "declined by bench/cpu_step_ab.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="training preset (default: tiny)")
    ap.add_argument("--off", choices=sorted(C_PATHS), nargs="+", required=True, help="C++ paths declined in variant A")
    ap.add_argument("--blocks", type=int, default=60, help="alternating blocks, >= 2 (default: 60)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per block, >= 1 (default: 3)")
    args = ap.parse_args()
    if args.blocks < 2:
        ap.error("--blocks must be >= 2")
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    modules = [importlib.import_module(m) for name in args.off for m in C_PATHS[name]]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = preset(args.preset)
        cfg.device, cfg.run_dir, cfg.shapes_per_class = "cpu", tmp, 8
        trainer = Trainer(cfg, progress=False, run_dir=f"{tmp}/{args.preset}")
        n = (4 + args.blocks * (args.steps + 1)) * cfg.batch
        loader = iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=cfg.batch, sampler=torch.utils.data.RandomSampler(
            trainer.dataset, replacement=True, num_samples=n)))
        for _ in range(4):
            trainer.train_step(*next(loader))
        times: dict[str, list[float]] = {"declined": [], "cpp": []}
        for block in range(args.blocks):
            variant = ("declined", "cpp")[block % 2]
            with ExitStack() as stack:
                if variant == "declined":
                    for module in modules:
                        stack.enter_context(mock.patch.object(module, "cpp_unavailable", _declined))
                trainer.train_step(*next(loader))  # one untimed step after the switch
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    trainer.train_step(*next(loader))
                times[variant].append((time.perf_counter() - t0) / args.steps * 1e3)
    ratios = [b / a for a, b in zip(times["declined"], times["cpp"])]
    print(f"{args.preset}, C++ {' + '.join(args.off)} declined vs available, {args.blocks} blocks of {args.steps} steps")
    print(f"declined: median {statistics.median(times['declined']):.1f} ms/step; "
          f"available: median {statistics.median(times['cpp']):.1f} ms/step; "
          f"per-pair ratio median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
