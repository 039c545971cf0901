"""Diagnostic: a GAN whose discriminator starts as a trained classifier of the real images.

With the class loss, G's class identity comes from D's class scores. This trains
``tiny`` (its config, ``--seed``, ``--kimg``, the judges' metrics at every snapshot) with
D's weights replaced, before the first step, by those ``experiments/d_classifier.py
--save`` wrote (tiny's D trained alone to classify the training set): does a D that
knows the classes from the start give G better class identity, from rgb and from depth?
Not a training method (the classifier sees the images for many more presentations than
the run does).

    python experiments/d_classifier.py --images 96000 --flips --save d_classifier.safetensors
    python experiments/d_warm_start.py --d-weights d_classifier.safetensors --seed 0 --out runs/d-warm-seed0
"""
from __future__ import annotations

import argparse
from pathlib import Path

from safetensors.torch import load_file

from tri3d.runs.config import preset
from tri3d.train.loop import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-weights", required=True, help="D weights written by d_classifier.py --save")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kimg", type=float, default=8.0, help="training length (default: %(default)s)")
    parser.add_argument("--out", required=True, help="run folder (must not exist)")
    args = parser.parse_args()
    if not Path(args.d_weights).is_file():
        parser.error(f"--d-weights {args.d_weights}: no such file")
    if args.kimg <= 0:
        parser.error("--kimg must be > 0")
    if Path(args.out).exists():
        parser.error(f"--out {args.out}: the folder exists")
    cfg = preset("tiny")
    cfg.seed, cfg.total_kimg, cfg.metrics_detector = args.seed, args.kimg, "shapes"
    cfg.max_minutes = 0.0  # compared with runs of the same kimg, whatever the machine's speed
    trainer = Trainer(cfg, run_dir=args.out, progress=False)
    trainer.D.load_state_dict(load_file(args.d_weights))
    trainer.train()


if __name__ == "__main__":
    main()
