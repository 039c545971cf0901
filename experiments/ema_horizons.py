"""Diagnostic: which EMA horizon of G scores best, from one run (a paired comparison).

Trains ``tiny`` as ``tri3d train --seed S --metrics shapes`` does (its config, the judges'
metrics at every snapshot) and keeps, beside the run's own EMA generator, copies with other
horizons: ``(ema_kimg, ema_rampup)`` as in ``TrainConfig`` (half-life ``min(ema_kimg,
kimg_so_far x ema_rampup)`` thousand images). The copies draw no random numbers, so the
run is the same run with or without them and every horizon is scored on the same
trajectory, the raw (non-averaged) G too. At 8 and 10 kimg each is scored with the judges
(the same seeded ``evaluate`` call), one JSON line per generator on stdout and in
``OUT/ema-horizons.json``.

    OMP_NUM_THREADS=1 python experiments/ema_horizons.py --seed 0 --out runs/ema-seed0
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path


from tri3d.metrics.detector import load_metric_detectors
from tri3d.metrics.evaluate import evaluate
from tri3d.runs.config import preset
from tri3d.train.loop import Trainer, update_ema

# name -> (ema_kimg, ema_rampup); "run" is tiny's own (batch 8: 2.5 kimg, rampup 0.05).
HORIZONS = {"r0.1": (2.5, 0.1), "r0.2": (2.5, 0.2), "k2.5": (2.5, None), "k5": (5.0, None), "k10": (10.0, None)}
SCORED_KIMG = (8.0, 10.0)


class HorizonTrainer(Trainer):
    """The ``tiny`` trainer with extra EMA copies of G, kept at the scored snapshots."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.copies = {name: copy.deepcopy(self.G_ema) for name in HORIZONS}
        self.kept: dict[float, dict[str, dict]] = {}

    def _update_ema(self, batch: int) -> None:
        super()._update_ema(batch)
        for name, G_copy in self.copies.items():
            update_ema(G_copy, self.G, batch, self.nimg, *HORIZONS[name])

    def save_snapshot(self) -> Path:
        path = super().save_snapshot()
        if self.cur_kimg in SCORED_KIMG:
            nets = {"run": self.G_ema, "raw": self.G, **self.copies}
            self.kept[self.cur_kimg] = {n: copy.deepcopy(g.state_dict()) for n, g in nets.items()}
        return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="run folder (must not exist)")
    args = parser.parse_args()
    if Path(args.out).exists():
        parser.error(f"--out {args.out}: the folder exists")
    cfg = preset("tiny")
    cfg.seed, cfg.metrics_detector = args.seed, "shapes"
    # 10 kimg with snapshots every 2 (SCORED_KIMG among them), whatever the machine's speed
    cfg.total_kimg, cfg.snapshot_kimg, cfg.max_minutes = 10.0, 2.0, 0.0
    trainer = HorizonTrainer(cfg, run_dir=args.out, progress=False)
    trainer.train()
    detector, depth_judge = load_metric_detectors("shapes", dataset=trainer.dataset, device=trainer.device,
                                                  judge=cfg.metrics_judge)
    G = copy.deepcopy(trainer.G_ema)
    rows = []
    for kimg, nets in trainer.kept.items():
        for name, state in nets.items():
            G.load_state_dict(state)
            r = evaluate(G, trainer.dataset, detector, depth_judge=depth_judge, num_gen=cfg.metrics_num_gen,
                         radius=cfg.camera_radius, fov_deg=cfg.fov_deg)
            rows.append(dict(seed=args.seed, kimg=kimg, generator=name, fid=r["fid"], depth_fid=r["depth_fid"],
                             class_accuracy=r["class_accuracy"], depth_class_accuracy=r["depth_class_accuracy"],
                             flat_cards=r["depth_flat_fraction"]))
            print(json.dumps(rows[-1]), flush=True)
    (Path(args.out) / "ema-horizons.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
