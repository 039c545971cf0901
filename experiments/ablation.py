"""The paper's ablation on the embedded shapes set: the four rows (EG3D baseline, +d,
+g+d, +g+d+multi-view) at tiny size, equal kimg, several seeds; every finished run is
scored with the shapes judges (rgb / depth FID, rgb / depth-only class accuracy) and the
inversion metric, and the table (mean +- std over seeds) is printed as Markdown.

    python experiments/ablation.py --kimg 8 --seeds 0 1 2 --out runs/ablation

``--distortion-reg W`` trains every row with that distortion weight instead of the
preset's (``--distortion-reg 0``: ``tiny`` before the distortion loss), and
``--down-filter F`` with that D downsampling (``--down-filter fir``: ``tiny`` before it
dropped StyleGAN2's blur). Results are kept per run in ``OUT/results.jsonl``; rerunning
skips runs finished with the same kimg, distortion weight and D downsampling, and the
table shows those.

``--continue-from DIR`` trains each run on from the newest snapshot at or below ``--kimg``
in ``DIR/ROW-seedS`` (an earlier ``--out``) instead of from scratch: that snapshot, its
``config.json`` and logs are copied to ``OUT/ROW-seedS`` (DIR is only read) and resumed
with its own config to ``--kimg``, which is what a run of ``--kimg`` from scratch does
(resuming continues a run step for step):

    python experiments/ablation.py --kimg 30 --seeds 0 1 --continue-from runs/ablation --out runs/ablation30
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from tri3d.invert.pti import InversionConfig
from tri3d.invert.run import make_perceptual
from tri3d.metrics.detector import load_metric_detectors
from tri3d.metrics.evaluate import evaluate
from tri3d.metrics.inversion import evaluate_inversion
from tri3d.models.discriminator import DOWN_FILTERS
from tri3d.runs import checkpoint
from tri3d.runs.config import TrainConfig, preset
from tri3d.train.loop import Trainer

ROWS = ("tiny-eg3d", "tiny-eg3d+d", "tiny-eg3d+g+d", "tiny-eg3d+g+d+mv")
COLUMNS = (("fid", "rgb FID"), ("depth_fid", "depth FID"), ("class_accuracy", "rgb class acc."),
           ("depth_class_accuracy", "depth class acc."), ("depth_flat_fraction", "flat cards"),
           ("inversion_depth_error_after", "inversion depth error"),
           ("inversion_perceptual_after", "inversion perceptual distance"))


def snapshot_kimg(snap: Path, batch: int) -> float:
    """The kimg a snapshot was written at (its step times the run's batch)."""
    return int(checkpoint.SNAPSHOT_RE.match(snap.name).group(1)) * batch / 1000


def copy_for_continuing(src: Path, dst: Path, kimg: float) -> Path:
    """Copy ``src``'s newest snapshot at or below ``kimg`` (with the run's config and logs)
    to the new run folder ``dst`` and return the copied snapshot; ``dst`` appears whole or
    not at all (copied under a temporary name, then renamed)."""
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"--continue-from: no run folder {src} (config.json missing)")
    batch = json.loads((src / "config.json").read_text())["batch"]
    snaps = [p for p in checkpoint.list_snapshots(src) if snapshot_kimg(p, batch) <= kimg]
    if not snaps:
        raise FileNotFoundError(f"--continue-from: no snapshot at or below {kimg:g} kimg in {src}")
    snap = snaps[-1]
    tmp = dst.with_name(f".tmp-{dst.name}")
    shutil.rmtree(tmp, ignore_errors=True)  # our own leftover from a killed copy
    tmp.mkdir(parents=True)
    shutil.copytree(snap, tmp / snap.name)
    for log in ("config.json", "stats.jsonl", "metrics.jsonl"):
        if (src / log).is_file():
            shutil.copy2(src / log, tmp / log)
    tmp.rename(dst)
    return dst / snap.name


def make_trainer(name: str, seed: int, kimg: float, out: Path, distortion_reg: float | None,
                 continue_from: Path | None, down_filter: str | None = None) -> Trainer:
    """A trainer of one run: from scratch, or resumed from a copy of an earlier run's snapshot."""
    run_dir = out / f"{name}-seed{seed}"
    if continue_from is None:
        cfg = preset(name)
        cfg.seed, cfg.run_dir = seed, str(out)
        resume = None
    else:
        resume = (checkpoint.find_snapshot(run_dir) if run_dir.exists()
                  else copy_for_continuing(continue_from / run_dir.name, run_dir, kimg))
        cfg = TrainConfig.from_dict(checkpoint.load_config(resume), where=str(resume / "config.json"))
        if (cfg.preset, cfg.seed) != (name, seed):
            raise ValueError(f"--continue-from: {resume} is a run of {cfg.preset} seed {cfg.seed}, not {name} seed {seed}")
    cfg.total_kimg, cfg.snapshot_kimg = kimg, kimg
    cfg.max_minutes = 0.0  # rows compare at equal kimg, not at what the machine's load allows in a time cap
    if distortion_reg is not None:
        cfg.distortion_reg = distortion_reg
    if down_filter is not None:
        if continue_from is not None and down_filter != cfg.D.down_filter:
            raise ValueError(f"--down-filter {down_filter}: {resume} was trained with {cfg.D.down_filter}")
        cfg.D.down_filter = down_filter
    return Trainer(cfg, resume=resume, progress=False, run_dir=run_dir)


def run_one(name: str, seed: int, kimg: float, out: Path, num_gen: int, inversion: int,
            distortion_reg: float | None, continue_from: Path | None = None, down_filter: str | None = None) -> dict:
    trainer = make_trainer(name, seed, kimg, out, distortion_reg, continue_from, down_filter)
    cfg = trainer.cfg
    trainer.train()
    G = trainer.G_ema
    detector, depth_judge = load_metric_detectors("shapes", dataset=trainer.dataset, judge=cfg.metrics_judge)
    row = evaluate(G, trainer.dataset, detector, depth_judge=depth_judge, num_gen=num_gen,
                   radius=cfg.camera_radius, fov_deg=cfg.fov_deg)
    if inversion:
        row.update(evaluate_inversion(G, cfg, inversion, make_perceptual(None, detector),
                                      inversion=InversionConfig(w_steps=100, pti_steps=100), judge=cfg.metrics_judge))
    row.update(preset=name, seed=seed, kimg=kimg, distortion_reg=cfg.distortion_reg, down_filter=cfg.D.down_filter)
    return row


def same_setting_as(row: dict, kimg: float, distortion_reg: float | None, down_filter: str | None) -> bool:
    """Whether a finished run of ``results.jsonl`` is one this invocation would train: the
    same kimg, distortion weight and D downsampling (``None``: the row's preset's). Rows
    written before those options existed trained with no distortion loss and the "fir" D."""
    cfg = preset(row["preset"])
    return (row["kimg"] == kimg
            and row.get("distortion_reg", 0.0) == (cfg.distortion_reg if distortion_reg is None else distortion_reg)
            and row.get("down_filter", "fir") == (cfg.D.down_filter if down_filter is None else down_filter))


def table(rows: list[dict]) -> str:
    lines = ["| row | runs | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    for name in ROWS:
        mine = [r for r in rows if r["preset"] == name]
        if not mine:
            continue
        cells = []
        for key, _ in COLUMNS:
            values = [r[key] for r in mine if key in r]
            cells.append(f"{np.mean(values):.3g} ± {np.std(values):.2g}" if values else "-")
        lines.append(f"| {name} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kimg", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--num-gen", type=int, default=1000)
    parser.add_argument("--inversion", type=int, default=5, help="held-out images inverted per run (0: skip)")
    parser.add_argument("--distortion-reg", type=float, default=None,
                        help="distortion loss weight of every row (default: the preset's)")
    parser.add_argument("--down-filter", default=None, choices=sorted(DOWN_FILTERS),
                        help="D's downsampling in every row (default: the preset's)")
    parser.add_argument("--continue-from", type=Path, default=None,
                        help="an earlier --out: train each run on from its snapshot (default: from scratch)")
    parser.add_argument("--out", default="runs/ablation")
    args = parser.parse_args()
    if args.distortion_reg is not None and not args.distortion_reg >= 0:
        parser.error(f"--distortion-reg must be >= 0, got {args.distortion_reg}")
    if args.continue_from is not None and not args.continue_from.is_dir():
        parser.error(f"--continue-from: no such folder: {args.continue_from}")
    out = Path(args.out)
    if args.continue_from is not None and out.resolve() == args.continue_from.resolve():
        parser.error("--continue-from and --out must be different folders")
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []

    def same_setting(r: dict) -> bool:
        return same_setting_as(r, args.kimg, args.distortion_reg, args.down_filter)

    for name in args.rows:
        for seed in args.seeds:
            if any(r["preset"] == name and r["seed"] == seed and same_setting(r) for r in done):
                continue
            row = run_one(name, seed, args.kimg, out, args.num_gen, args.inversion, args.distortion_reg,
                          args.continue_from, args.down_filter)
            with open(results, "a") as f:
                f.write(json.dumps(row) + "\n")
            done.append(row)
            print(json.dumps({k: row[k] for k in ("preset", "seed", *[c for c, _ in COLUMNS]) if k in row}),
                  flush=True)
    print(table([r for r in done if same_setting(r)]))


if __name__ == "__main__":
    main()
