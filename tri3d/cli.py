"""The `tri3d` command. Subcommands validate their options and hand off to the library."""
from __future__ import annotations

import argparse
import json
import math
import sys
import zipfile
from pathlib import Path


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def _nonneg_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _bool01(text: str) -> bool:
    if text not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"must be 0 or 1, got {text}")
    return text == "1"


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


# train option -> (TrainConfig field, type, help)
TRAIN_OVERRIDES = {
    "data": ("data", str, "dataset folder or zip (StyleGAN layout); default: the embedded shapes set"),
    "run_dir": ("run_dir", str, "where numbered run folders go (default runs)"),
    "kimg": ("total_kimg", _positive_float, "training length in thousands of real images (without --minutes it "
             "also lifts the config's time cap: the run trains exactly this long)"),
    "minutes": ("max_minutes", _nonneg_float, "wall-clock cap on this invocation's training: it stops at the first "
                "step past it and writes its snapshot (0: none; --kimg is then the most it trains)"),
    "snapshot_kimg": ("snapshot_kimg", _positive_float, "snapshot interval in kimg"),
    "batch": ("batch", _positive_int, "batch size (objects per step)"),
    "views": ("views", _positive_int, "views per generated object seen by D (multi-view discrimination)"),
    "multiview_start_kimg": ("multiview_start_kimg", _nonneg_float, "kimg from which --views applies (1 before)"),
    "seed": ("seed", int, "random seed"),
    "mirror": ("mirror", _bool01, "1: also show D each real image flipped left-right (StyleGAN's --mirror)"),
    "device": ("device", str, "auto, cpu, cuda or cuda:N"),
    "r1_gamma": ("r1_gamma", _nonneg_float, "R1 regularization weight"),
    "class_loss": ("class_loss", _nonneg_float, "weight of a cross-entropy on D's class scores (0: the paper)"),
    "distortion_reg": ("distortion_reg", _nonneg_float,
                       "weight of the distortion loss on G's rays: weights on one surface, not fog (0: the paper)"),
    "density_reg": ("density_reg", _nonneg_float,
                    "weight of EG3D's density smoothness term (L1 between the raw densities of points "
                    "density_reg_p_dist apart)"),
    "workers": ("num_workers", _nonneg_int, "data loader worker processes"),
    "log_every": ("log_every", _positive_int, "steps between stats.jsonl rows"),
    "precision": ("precision", str, "autocast for synthesis and D's high-resolution blocks with bf16"),
    "metrics": ("metrics_detector", str, "score each snapshot with this detector ('shapes' or a TorchScript path)"),
}
TRAIN_CHOICES = {"precision": ["fp32", "bf16"]}


def _check_out_dir(path: str) -> None:
    """An output folder must be a folder (or not exist yet): checked before any work."""
    if Path(path).exists() and not Path(path).is_dir():
        raise ValueError(f"--out {path}: exists and is not a folder")


def _check_out_file(path: str | None) -> None:
    """An output file must not be a folder: checked before any work."""
    if path is not None and Path(path).is_dir():
        raise ValueError(f"--out {path}: is a folder, expected a PNG path")


def build_parser() -> argparse.ArgumentParser:
    from tri3d.runs.config import PRESETS

    parser = argparse.ArgumentParser(prog="tri3d", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a class-conditional triplane GAN")
    train.add_argument("--preset", choices=sorted(PRESETS), default=None, help="configuration preset (default tiny)")
    for flag, (_, typ, help_) in TRAIN_OVERRIDES.items():
        train.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, default=None, help=help_,
                           choices=TRAIN_CHOICES.get(flag))
    train.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                       help="any config option, e.g. lr_G=0.006 or G.background=random (dotted keys reach nested "
                            "options; repeatable; applied after the named options)")
    train.add_argument("--skip-bad", action="store_true", help="skip unreadable / mismatched images and count them")
    train.add_argument("--resume", default=None, help="run folder or snapshot to continue from")
    train.add_argument("--config", default=None, help="a config.json (e.g. from a run) to start from instead of --preset")
    train.add_argument("--gpus", type=_positive_int, default=1,
                       help="processes on this machine (one per GPU; gloo processes with --device cpu, "
                            "sharing out the cores)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")

    data = sub.add_parser("dataset", help="build datasets")
    dsub = data.add_subparsers(dest="dataset_command", required=True)
    conv = dsub.add_parser("convert", help="class folders root/<class>/*.jpg -> StyleGAN-layout zip")
    conv.add_argument("--source", required=True)
    conv.add_argument("--dest", required=True, help="output .zip")
    conv.add_argument("--resolution", type=_positive_int, required=True)
    conv.add_argument("--skip-bad", action="store_true")
    shapes = dsub.add_parser("shapes", help="render the procedural shapes set")
    shapes.add_argument("--dest", default=None, help="output folder (default: the cache folder)")
    shapes.add_argument("--resolution", type=_positive_int, default=32)
    shapes.add_argument("--per-class", type=_positive_int, default=200)
    shapes.add_argument("--seed", type=int, default=0)
    shapes.add_argument("--rebuild", action="store_true",
                        help="replace a tri3d shapes set at --dest made with other parameters (never anything else)")

    gen = sub.add_parser("generate", help="multi-view grids, orbit videos and meshes from a trained model")
    gen.add_argument("--ckpt", required=True, help="run folder (newest snapshot) or snapshot folder")
    gen.add_argument("--classes", default="0", help="class labels, e.g. 3,17 or 0-4 (default 0)")
    gen.add_argument("--seeds", default="0-3", help="latent seeds, e.g. 0-7 (default 0-3)")
    gen.add_argument("--views", type=_positive_int, default=3)
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--trunc", type=_nonneg_float, default=1.0,
                     help="truncation psi toward the class's mean w (default 1: none)")
    gen.add_argument("--video", action="store_true", help="an orbit GIF per sample")
    gen.add_argument("--mesh", action="store_true", help="a .ply mesh (marching cubes) per sample (needs scikit-image)")
    gen.add_argument("--save-density", action="store_true",
                     help="with --mesh, also the raw density grid as .npy (mesh-resolution^3 floats: 64 MB at 256)")
    gen.add_argument("--mesh-resolution", type=_positive_int, default=256)
    gen.add_argument("--device", default="auto")

    met = sub.add_parser("metrics", help="FID / KID / IS (with --detector shapes also rgb and depth-only class "
                                         "accuracy and depth FID / KID)")
    met.add_argument("--ckpt", required=True, help="run folder (newest snapshot) or snapshot folder")
    met.add_argument("--detector", default=None,
                     help="'shapes', or a TorchScript inception-2015-12-05.pt (default: $TRI3D_DETECTOR, else "
                          "StyleGAN2-ADA's, fetched into the cache on first use)")
    met.add_argument("--data", default=None, help="dataset (default: the run's)")
    met.add_argument("--num-gen", type=_positive_int, default=1000, help="generated images (default 1000)")
    met.add_argument("--trunc", type=_nonneg_float, default=1.0,
                     help="truncation psi toward each class's mean w (default 1: none, as FID is defined)")
    met.add_argument("--init", action="store_true", help="score the untrained generator of the same config")
    met.add_argument("--inversion", type=_positive_int, default=None, metavar="N",
                     help="also invert N held-out shapes images with their true cameras (PTI) and report perceptual "
                          "distance and relative depth error before/after (the paper's Table 3)")
    met.add_argument("--vgg", default=None, help="vgg16.pt for the inversion's LPIPS, or 'vgg16' to fetch "
                                                 "StyleGAN2-ADA's into the cache (default: offline fallback)")
    met.add_argument("--device", default="auto")

    inv = sub.add_parser("invert", help="single-view 3D reconstruction by pivotal tuning inversion")
    inv.add_argument("--ckpt", required=True, help="run folder (newest snapshot) or snapshot folder")
    src = inv.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="the photograph (any size: centre-cropped and resized; gray/RGBA -> RGB)")
    src.add_argument("--shapes-index", type=int, help="invert image N of the run's shapes set (uses its true camera)")
    inv.add_argument("--out", required=True, help="output folder")
    inv.add_argument("--class", dest="cls", type=int, default=None, help="class label (default: predicted)")
    inv.add_argument("--classifier", default="shapes",
                     help="'shapes' or a TorchScript detector with the Inception call signature "
                          "(uint8 images, no_output_bias=True -> class probabilities) to predict the class")
    inv.add_argument("--pose", default="front", help="'front' or 'AZIMUTH,ELEVATION' degrees")
    inv.add_argument("--vgg", default=None, help="vgg16.pt for LPIPS, or 'vgg16' to fetch StyleGAN2-ADA's into the "
                                                 "cache (default: offline fallback)")
    inv.add_argument("--w-steps", type=int, default=300)
    inv.add_argument("--pti-steps", type=int, default=200)
    inv.add_argument("--w-plus", action="store_true", help="optimize one w per layer")
    inv.add_argument("--locality", type=_nonneg_float, default=0.0, help="PTI locality regularization weight")
    inv.add_argument("--depth", default=None, help="reference depth .npy [H, W] for --eval (scale-invariant)")
    inv.add_argument("--eval", action="store_true", help="report LPIPS / depth error in inversion.json")
    inv.add_argument("--mesh-resolution", type=_positive_int, default=128)
    inv.add_argument("--device", default="auto")

    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    btrain = bsub.add_parser("train", help="time training iterations of a preset, per stage")
    btrain.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    btrain.add_argument("--steps", type=_positive_int, default=20)
    btrain.add_argument("--warmup", type=_nonneg_int, default=3, help="untimed steps first (default 3)")
    btrain.add_argument("--batch", type=_positive_int, default=None)
    btrain.add_argument("--device", default="auto")
    btrain.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    btrain.add_argument("--impl", choices=["auto", "ref"], default="auto", help="ref: force the reference paths")
    btrain.add_argument("--json", default=None, help="also write the result here")

    plot = sub.add_parser("plot", help="draw a run's learning curves (metrics.jsonl) to a PNG")
    plot.add_argument("run", help="run folder holding metrics.jsonl")
    plot.add_argument("--out", default=None, help="PNG path (default: RUN/learning_curve.png)")

    doctor = sub.add_parser("doctor", help="versions, which implementation each op uses here, and a check of every "
                                           "available fused / native path against its reference")
    doctor.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")

    demo = sub.add_parser("demo", help="render random triplanes from sphere poses to a PNG grid")
    demo.add_argument("--out", default="runs/demo.png", help="PNG path (default: runs/demo.png)")
    demo.add_argument("--objects", type=_positive_int, default=2)
    demo.add_argument("--views", type=_positive_int, default=3)
    demo.add_argument("--resolution", type=_positive_int, default=64)
    demo.add_argument("--seed", type=int, default=0)
    return parser


def train_config(args: argparse.Namespace):
    """The resolved TrainConfig: preset (or the resumed run's config) + explicit options."""
    from tri3d.runs import checkpoint
    from tri3d.runs.config import TrainConfig, preset, with_overrides

    if args.resume and (args.preset or args.config):
        raise ValueError(f"--{'preset' if args.preset else 'config'} cannot be combined with --resume: a resumed run "
                         "keeps its own config (give single options such as --kimg to change them)")
    if args.preset and args.config:
        raise ValueError("--preset and --config are alternatives: give one")
    if args.resume:
        snap = checkpoint.find_snapshot(args.resume)
        cfg = TrainConfig.from_dict(checkpoint.load_config(snap), where=str(snap / "config.json"))
    elif args.config:
        path = Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"--config: no such file: {path}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"--config {path}: not valid JSON ({err})") from err
        cfg = TrainConfig.from_dict(data, where=f"--config {path}")
    else:
        cfg = preset(args.preset or "tiny")
    for flag, (field, _, _) in TRAIN_OVERRIDES.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(cfg, field, value)
    if args.kimg is not None and args.minutes is None:  # "--kimg 30" means 30 kimg, not what 9 minutes allow
        cfg.max_minutes = 0.0
    cfg.skip_bad = cfg.skip_bad or args.skip_bad
    if args.assignments:
        cfg = with_overrides(cfg, args.assignments)
    cfg.validate(names={field: "--" + flag.replace("_", "-") for flag, (field, _, _) in TRAIN_OVERRIDES.items()})
    return cfg


def network_summary(cfg) -> str:
    """Structure and parameter counts of the config's G and D (built on the meta device)."""
    import torch

    from tri3d.models import Discriminator, TriplaneGenerator
    from tri3d.models.summary import describe_networks

    with torch.device("meta"):
        G, D = TriplaneGenerator(cfg.G), Discriminator(cfg.D)
    note = "" if cfg.G.num_classes else "\n(classes come from the dataset: the class-conditional layers are not counted)"
    return describe_networks(G, D) + note


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from tri3d.train.run_state import resolve_device

    cfg = train_config(args)
    resolve_device(cfg.device)  # a device this machine lacks fails here, --dry-run included
    if args.dry_run:  # the config on stdout (reusable with --config), the networks it builds on stderr
        print(cfg.to_json())
        print(network_summary(cfg), file=sys.stderr)
        return 0
    if cfg.metrics_detector not in (None, "shapes"):  # a bad path fails now, not at the first snapshot
        from tri3d.metrics.detector import load_detector

        try:
            load_detector(cfg.metrics_detector)
        except (OSError, ValueError) as err:
            raise ValueError(f"--metrics: {err}") from err
    if args.gpus > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        if cfg.batch % args.gpus:
            raise ValueError(f"--batch ({cfg.batch}) must be divisible by --gpus ({args.gpus})")
        from tri3d.train.distributed import spawn

        return spawn(args.gpus, main, _without_gpus(args.argv))
    from tri3d.train.loop import Trainer

    trainer = Trainer(cfg, resume=args.resume, progress=not args.no_progress)
    if trainer.dataset.skipped and trainer.dist.is_main:
        print(f"skipped {len(trainer.dataset.skipped)} bad images", file=sys.stderr)
    run = trainer.train()
    if trainer.dist.is_main:
        if trainer.stopped_by_time:
            print(f"stopped at the time cap (--minutes {cfg.max_minutes:g}) after {trainer.cur_kimg:.2f} kimg "
                  f"of {cfg.total_kimg:g}")
        print(f"run folder: {run}")
    return 0


def _without_gpus(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--gpus":
            skip = True
        elif not a.startswith("--gpus="):
            out.append(a)
    return out


def cmd_dataset(args: argparse.Namespace) -> int:
    if args.dataset_command == "convert":
        from tri3d.data.convert import convert_class_folders

        info = convert_class_folders(args.source, args.dest, args.resolution, skip_bad=args.skip_bad)
        print(json.dumps({"dest": args.dest, "images": info["images"], "classes": len(info["classes"]),
                          "skipped": len(info["skipped"])}))
    else:
        from tri3d.data.shapes import make_shapes_dataset

        path = make_shapes_dataset(args.dest, resolution=args.resolution, per_class=args.per_class, seed=args.seed,
                                   progress=True, rebuild=args.rebuild)
        print(f"shapes dataset: {path}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from tri3d.export.generate import generate, load_generator, parse_int_list
    from tri3d.train.run_state import resolve_device

    classes, seeds = parse_int_list(args.classes, "--classes"), parse_int_list(args.seeds, "--seeds")
    _check_out_dir(args.out)
    if args.save_density and not args.mesh:
        raise ValueError("--save-density needs --mesh")
    if args.mesh:
        import importlib.util

        if importlib.util.find_spec("skimage") is None:
            raise ValueError("--mesh needs scikit-image (pip install -e \".[export]\")")
    G, cfg, snap = load_generator(args.ckpt, resolve_device(args.device))
    paths = generate(G, cfg, classes=classes, seeds=seeds, views=args.views, out_dir=args.out,
                     truncation_psi=args.trunc, video=args.video, mesh=args.mesh, mesh_resolution=args.mesh_resolution,
                     save_density=args.save_density)
    print(f"{snap}: wrote {len(paths)} files to {args.out}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    import torch

    from tri3d.export.generate import load_generator
    from tri3d.metrics.detector import load_detector, load_metric_detectors
    from tri3d.metrics.evaluate import append_jsonl, evaluate
    from tri3d.models import TriplaneGenerator
    from tri3d.runs import checkpoint
    from tri3d.train.run_state import load_dataset, resolve_device

    device = resolve_device(args.device)
    G, cfg, snap = load_generator(args.ckpt, device)
    if args.data is not None:
        cfg.data = args.data
    dataset = load_dataset(cfg)
    if args.init:
        torch.manual_seed(cfg.seed)
        G = TriplaneGenerator(cfg.G).to(device).eval().requires_grad_(False)
    detector, depth_judge = load_metric_detectors(args.detector, dataset=dataset, device=device,
                                                  judge=cfg.metrics_judge)
    result = evaluate(G, dataset, detector, depth_judge=depth_judge, num_gen=args.num_gen, radius=cfg.camera_radius,
                      fov_deg=cfg.fov_deg, truncation_psi=args.trunc)
    if args.inversion is not None:
        from tri3d.invert.run import make_perceptual
        from tri3d.metrics.inversion import evaluate_inversion

        if cfg.data is not None:
            raise ValueError("--inversion needs a run trained on the embedded shapes set (held-out ground truth)")
        judge = detector if args.detector == "shapes" else load_detector("shapes", dataset=dataset, device=device,
                                                                         judge=cfg.metrics_judge)
        result.update(evaluate_inversion(G, cfg, args.inversion, make_perceptual(args.vgg, judge, device),
                                         judge=cfg.metrics_judge))
    result.update(snapshot=str(snap), init=args.init)
    if not args.init and (snap / "train_state.pt").exists():  # its place on the run's curve (tri3d plot)
        state = checkpoint.load_train_state(snap)
        result.update(step=state["step"], kimg=state["nimg"] / 1000)
    append_jsonl(snap.parent / "metrics.jsonl", result)
    print(json.dumps(result))
    return 0


def cmd_invert(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from tri3d.export.generate import load_generator
    from tri3d.invert.pti import InversionConfig
    from tri3d.invert.run import load_target, make_perceptual, parse_pose, predict_class, run_inversion
    from tri3d.metrics.detector import load_detector
    from tri3d.metrics.shapes_judges import load_shapes_judge
    from tri3d.train.run_state import load_dataset, resolve_device

    _check_out_dir(args.out)
    device = resolve_device(args.device)
    G, cfg, _ = load_generator(args.ckpt, device)
    res = G.config.image_resolution
    if args.cls is not None and not 0 <= args.cls < max(G.config.num_classes, 1):
        raise ValueError(f"--class must be in [0, {G.config.num_classes}), got {args.cls}")
    ref_depth = ref_mask = None
    pose = parse_pose(args.pose, cfg.camera_radius)
    if args.shapes_index is not None:  # one image of the run's dataset (read alone, never the whole set)
        dataset = load_dataset(cfg)
        if not 0 <= args.shapes_index < len(dataset):
            raise ValueError(f"--shapes-index must be in [0, {len(dataset)}), got {args.shapes_index}")
        target = dataset[args.shapes_index][0].float() / 127.5 - 1
        gt = np.load(Path(dataset.path) / "ground_truth.npz")
        pose = torch.from_numpy(gt["cam2world"][args.shapes_index]).float()
        ref_depth = torch.from_numpy(gt["depth"][args.shapes_index])
        ref_mask = torch.from_numpy(gt["opacity"][args.shapes_index] > 0.5)
    else:
        target = load_target(args.image, res)
        if args.depth:
            ref_depth = torch.from_numpy(np.load(args.depth)).float()
            if ref_depth.shape != (res, res):
                raise ValueError(f"--depth must be a [{res}, {res}] array, got {list(ref_depth.shape)}")
    if target.shape[-1] != res:
        raise ValueError(f"the image is {target.shape[-1]} pixels, the generator makes {res}")
    # The shapes judge (cached, trained on its own shapes set, never on this run's data) is
    # built only when something needs it: the class prediction or the fallback perceptual loss.
    needs_class = args.cls is None and G.config.num_classes > 0
    needs_judge = args.vgg is None or (needs_class and args.classifier == "shapes")
    judge = load_shapes_judge("rgb", res, judge=cfg.metrics_judge, device=device) if needs_judge else None
    c = args.cls
    if needs_class:
        classifier = judge if args.classifier == "shapes" else load_detector(args.classifier, device=device)
        c = predict_class(classifier, target.to(device))
    perceptual = make_perceptual(args.vgg, judge, device)
    icfg = InversionConfig(w_steps=args.w_steps, pti_steps=args.pti_steps, w_plus=args.w_plus,
                           locality_weight=args.locality)
    report = run_inversion(G, cfg, target, c=c, pose=pose, out_dir=args.out, perceptual=perceptual, cfg=icfg,
                           reference_depth=ref_depth if args.eval else None,
                           reference_mask=ref_mask, scale_invariant_depth=args.depth is not None,
                           mesh_resolution=args.mesh_resolution)
    keys = ("class", "psnr_init", "psnr", "perceptual_distance", "depth_error_init", "depth_error")
    print(json.dumps({k: report[k] for k in keys if k in report}))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import os

    from tri3d.train.bench import bench_train, format_table

    if args.impl == "ref":
        os.environ["TRI3D_IMPL"] = "ref"
    result = bench_train(args.preset, steps=args.steps, warmup=args.warmup, batch=args.batch, device=args.device,
                         precision=args.precision)
    result["impl"] = args.impl
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from tri3d.export.plot import plot_learning_curve

    _check_out_file(args.out)
    print(f"wrote {plot_learning_curve(args.run, args.out)}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from tri3d.doctor import run_doctor
    from tri3d.train.run_state import resolve_device

    return 0 if run_doctor(resolve_device(args.device)) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from tri3d.demo import render_demo

    _check_out_file(args.out)
    path = render_demo(args.out, objects=args.objects, views=args.views, resolution=args.resolution, seed=args.seed)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from tri3d.train.errors import TrainingStopped

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        commands = {"train": cmd_train, "dataset": cmd_dataset, "generate": cmd_generate, "metrics": cmd_metrics,
                    "invert": cmd_invert, "bench": cmd_bench, "plot": cmd_plot, "demo": cmd_demo,
                    "doctor": cmd_doctor}
        return commands[args.command](args)
    except (ValueError, OSError, zipfile.BadZipFile, TrainingStopped) as err:  # expected: one line, exit 2
        print(f"tri3d {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
