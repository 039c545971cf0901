"""Paired seeds: does a training setting beat another, or was it the seed?

Trains a control and a variant setting with the same seeds, scores every run with the
shapes judges (what ``tri3d metrics --ckpt RUN --detector shapes`` prints) and prints,
per score, the paired difference over seeds (``tri3d.metrics.paired``: mean and SD of
``variant - control``, seeds above / below, the sign-flip p-value, the seeds a test at 5%
needs to see a difference that large 80% of the time):

    python experiments/paired_seeds.py --set lr_G=0.006 --set lr_D=0.006 --kimg 10 --seeds 0-11 --out runs/paired-lr6

The control is a preset or a config.json (``--control``, default ``tiny``); the variant is
the control with ``--set KEY=VALUE`` assignments (dotted keys reach nested options:
``--set G.background=random``) or another config (``--variant CONFIG``). Both arms of a
seed are trained together, ``--jobs`` runs at a time as ``tri3d train`` processes with
``--threads`` threads each (default: the cores shared out), for ``--kimg`` (both arms,
without the presets' time cap; ``--set total_kimg=K`` gives the variant another length;
scored at the last snapshot). On ``tiny`` a lever's
effect is small against the spread of runs (docs/learning.md): keep one only when its
p-value is small over at least as many seeds as ``seeds for 80% power`` asks.

``OUT`` holds ``control.json`` and ``variant.json`` (the arms' configs), a run folder per
arm and seed (``ARM-seedS``), its log (``ARM-seedS.log``) and its scores
(``ARM-seedS.json``, written whole or not at all). Rerunning with the same ``--out``
skips runs that have scores, resumes a killed run from its newest snapshot, and refuses
arms whose configs differ from the ones ``OUT`` was started with. A run of the same config
and seed made elsewhere is adopted by writing the line ``tri3d metrics`` printed for it
to ``ARM-seedS.json`` before starting (runs reproduce bit for bit at one thread count).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tri3d.export.generate import parse_int_list
from tri3d.metrics.paired import paired_difference
from tri3d.runs import checkpoint
from tri3d.runs.config import PRESETS, TrainConfig, preset, with_overrides

ARMS = ("control", "variant")
SCORES = (("class_accuracy", "rgb class accuracy"), ("depth_class_accuracy", "depth-only class accuracy"),
          ("fid", "rgb FID"), ("depth_fid", "depth FID"), ("depth_flat_fraction", "called flat cards"))


def parse_seeds(items: list[str]) -> list[int]:
    """``["0-3", "7,2"]`` -> ``[0, 1, 2, 3, 7]`` (``tri3d generate``'s syntax, repeats dropped:
    one run per arm and seed); ``ValueError`` names ``--seeds``."""
    return list(dict.fromkeys(parse_int_list(",".join(items), "--seeds")))


def load_config(spec: str, flag: str) -> TrainConfig:
    """A preset name or a config.json path, without a time cap: arms are compared at equal
    kimg, not at what the machine's load allowed each run in ``max_minutes``."""
    if spec in PRESETS:
        cfg = preset(spec)
    else:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"{flag}: {spec!r} is neither a preset ({', '.join(sorted(PRESETS))}) nor a file")
        cfg = TrainConfig.from_dict(json.loads(path.read_text()), where=str(path))
    cfg.max_minutes = 0.0
    cfg.validate()
    return cfg


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename: whole or not at all."""
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    tmp.replace(path)


def claim_arms(out: Path, configs: dict[str, TrainConfig]) -> None:
    """Write the arms' configs to ``out``, or check they match the ones already there."""
    for arm, cfg in configs.items():
        path, text = out / f"{arm}.json", cfg.to_json()
        if path.exists() and json.loads(path.read_text()) != json.loads(text):
            raise ValueError(f"--out: {path} holds another {arm} config; use a new --out for a new experiment")
        if not path.exists():
            write_whole(path, text)


def newest_run(root: Path) -> Path | None:
    """The newest numbered run folder under ``root`` that has a snapshot."""
    runs = sorted(p for p in root.iterdir() if p.is_dir() and checkpoint.list_snapshots(p)) if root.is_dir() else []
    return runs[-1] if runs else None


def run_arm(out: Path, arm: str, seed: int, threads: int) -> dict:
    """Train (or resume) one arm of one seed, score it, write and return its scores."""
    scores_path = out / f"{arm}-seed{seed}.json"
    if scores_path.exists():
        return json.loads(scores_path.read_text())
    root, log = out / f"{arm}-seed{seed}", out / f"{arm}-seed{seed}.log"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    tri3d = [sys.executable, "-m", "tri3d.cli"]
    previous = newest_run(root)
    train = (tri3d + ["train", "--resume", str(previous)] if previous is not None else
             tri3d + ["train", "--config", str(out / f"{arm}.json"), "--seed", str(seed), "--run-dir", str(root)])
    with open(log, "a") as f:
        if subprocess.run(train + ["--no-progress"], stdout=f, stderr=subprocess.STDOUT, env=env).returncode:
            raise RuntimeError(f"training {arm} seed {seed} failed; see {log}")
    score = subprocess.run(tri3d + ["metrics", "--ckpt", str(newest_run(root)), "--detector", "shapes"],
                           capture_output=True, text=True, env=env)
    with open(log, "a") as f:
        f.write(score.stdout + score.stderr)
    if score.returncode:
        raise RuntimeError(f"scoring {arm} seed {seed} failed; see {log}")
    result = json.loads(score.stdout.strip().splitlines()[-1])
    result.update(arm=arm, seed=seed)
    write_whole(scores_path, json.dumps(result) + "\n")
    return result


def table(results: dict[tuple[str, int], dict], seeds: list[int]) -> str:
    """The paired summary of every score over the seeds both arms have finished."""
    done = [s for s in seeds if all((arm, s) in results for arm in ARMS)]
    if not done:
        return "no seed has both arms scored yet"
    lines = [f"seeds {' '.join(map(str, done))}",
             "| score | control per seed (mean) | variant per seed (mean) | variant - control: mean (SD) "
             "| seeds above / below | p (sign flip) | seeds for 80% power |",
             "|---|---|---|---|---|---:|---:|"]
    for key, label in SCORES:
        control = [results["control", s][key] for s in done]
        variant = [results["variant", s][key] for s in done]
        p = paired_difference(control, variant)
        cells = [" / ".join(f"{x:.3g}" for x in control) + f" ({p.control_mean:.3g})",
                 " / ".join(f"{x:.3g}" for x in variant) + f" ({p.variant_mean:.3g})",
                 f"{p.mean:+.3g} ({p.sd:.2g})", f"{p.above} / {p.below}", f"{p.p_value:.3g}",
                 "-" if p.seeds_for_power is None else str(p.seeds_for_power)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control", default="tiny", help="a preset or a config.json (default tiny)")
    parser.add_argument("--variant", default=None, help="a preset or a config.json (default: the control)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the variant, e.g. lr_G=0.006 or G.background=random (repeatable)")
    parser.add_argument("--seeds", nargs="+", default=["0-5"], help="seeds, e.g. 0-11 or 0-3 6,7 (default 0-5)")
    parser.add_argument("--kimg", type=float, required=True, help="training length of both arms")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per run (default: the cores divided by --jobs, at least 1)")
    parser.add_argument("--out", required=True, help="the experiment's folder")
    args = parser.parse_args()
    try:
        seeds = parse_seeds(args.seeds)
        control = with_overrides(load_config(args.control, "--control"), [f"total_kimg={args.kimg}"], flag="--kimg")
        variant = control if args.variant is None else with_overrides(
            load_config(args.variant, "--variant"), [f"total_kimg={args.kimg}"], flag="--kimg")
        variant = with_overrides(variant, args.assignments)  # --set total_kimg=K gives the variant its own length
    except ValueError as e:
        parser.error(str(e))
    if not 1 <= args.jobs <= 64:
        parser.error(f"--jobs must be an integer in [1, 64], got {args.jobs}")
    threads = args.threads if args.threads is not None else max(1, (os.cpu_count() or 1) // args.jobs)
    if not 1 <= threads <= 256:
        parser.error(f"--threads must be an integer in [1, 256], got {threads}")
    if variant.to_dict() == control.to_dict():
        parser.error("the variant is the control: give --variant or --set")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        claim_arms(out, {"control": control, "variant": variant})
    except ValueError as e:
        parser.error(str(e))
    tasks = [(arm, s) for s in seeds for arm in ARMS]  # both arms of a seed side by side
    results, failures = {}, []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {task: pool.submit(run_arm, out, *task, threads) for task in tasks}
        for task, future in futures.items():
            try:
                results[task] = future.result()
            except RuntimeError as e:
                failures.append(str(e))
    print(table(results, seeds))
    if failures:
        sys.exit("; ".join(failures))


if __name__ == "__main__":
    main()
