"""Control experiment: how well can tiny's discriminator learn the classes at all?

Trains the ``tiny`` preset's discriminator alone as a classifier (its class scores read
as logits, cross-entropy, Adam with the preset's learning rate and betas, no GAN loss)
on the embedded shapes set with ``--per-class`` images per class (seed 0, the training
set's seed), and reports its accuracy on the judges' held-out set (a fresh seed) as it
sees more images. With the class loss, G's class signal is D's class knowledge: a D that
cannot tell held-out shapes apart cannot teach G to draw them.

``--network judge`` trains the rgb judge's network instead (batch norm, Adam at 2e-3 with
the default betas, random horizontal flips, as the judges train but without their
one-cycle schedule): how fast a classifier built to learn fast learns the same images.
``--flips`` gives tiny's D the same random flips; ``--lr`` / ``--beta1`` set D's Adam
learning rate and beta1 (how fast D alone learns the classes under other settings);
``--center`` subtracts each image's mean colour before D, as the judges do (the
backgrounds are random solid colours); ``--width`` sets D's channels (tiny: 64);
``--set KEY=VALUE`` sets any option of the preset, e.g. ``D.mapping_lr_multiplier=1``
(D's label mapping, which StyleGAN2 trains at a hundredth of the learning rate);
``--save PATH`` writes the trained D's weights (``experiments/d_warm_start.py`` starts a
GAN from them).

    python experiments/d_classifier.py --per-class 200 --images 40000
    python experiments/d_classifier.py --network judge --batch 8 --images 16000 --eval-every 2000
    python experiments/d_classifier.py --batch 8 --images 16000 --eval-every 4000 --lr 0.008
    python experiments/d_classifier.py --batch 8 --images 16000 --eval-every 4000 --center
    python experiments/d_classifier.py --images 96000 --flips --save d_classifier.safetensors
    python experiments/d_classifier.py --batch 8 --images 48000 --eval-every 16000 --set D.mapping_lr_multiplier=1
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from tri3d.data.dataset import ImageDataset
from tri3d.data.shapes import make_shapes_dataset, shapes_dataset_path
from tri3d.metrics.shapes_judges import ShapesClassifier, heldout_images
from tri3d.models import Discriminator
from tri3d.runs.config import preset, with_overrides
from tri3d.utils.files import chmod_as_created


def images_of(path) -> tuple[torch.Tensor, torch.Tensor]:  # images [N, 3, R, R] in [-1, 1], labels [N]
    dataset = ImageDataset(path)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))]).float() / 127.5 - 1
    return images, dataset.labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200, help="training images per class (tiny: 200)")
    parser.add_argument("--images", type=int, default=40000, help="image presentations in all")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=8000, help="presentations between evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--network", choices=("D", "judge"), default="D",
                        help="tiny's discriminator or the rgb judge's classifier (default: %(default)s)")
    parser.add_argument("--flips", action="store_true", help="random horizontal flips for D too (the judge always)")
    parser.add_argument("--lr", type=float, default=None, help="D's Adam learning rate (default: tiny's lr_D)")
    parser.add_argument("--beta1", type=float, default=None, help="D's Adam beta1 (default: tiny's, 0)")
    parser.add_argument("--center", action="store_true", help="subtract each image's mean colour before D")
    parser.add_argument("--width", type=int, default=None, help="D's channels at every resolution (default: tiny's, 64)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any option of the tiny preset, e.g. D.mapping_layers=2 (repeatable)")
    parser.add_argument("--save", default=None, help="write the trained D's weights here (safetensors; --network D)")
    args = parser.parse_args()
    for flag in ("per_class", "images", "batch", "eval_every"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr}")
    if args.beta1 is not None and not 0 <= args.beta1 < 1:
        parser.error(f"--beta1 must lie in [0, 1), got {args.beta1}")
    if args.width is not None and not 1 <= args.width <= 4096:
        parser.error(f"--width must lie in [1, 4096], got {args.width}")
    if (args.lr is not None or args.beta1 is not None or args.center or args.width is not None or args.set) \
            and args.network != "D":
        parser.error("--lr, --beta1, --center, --width and --set set up D: they need --network D")
    if args.save and args.network != "D":
        parser.error("--save writes a discriminator: it needs --network D")
    if args.save and Path(args.save).exists():
        parser.error(f"--save {args.save}: the file exists")
    try:
        cfg = with_overrides(preset("tiny"), args.set)
    except ValueError as e:
        parser.error(str(e))
    R = cfg.G.image_resolution
    judge = cfg.metrics_judge
    train_x, train_y = images_of(make_shapes_dataset(shapes_dataset_path(R, args.per_class, seed=0),
                                                     resolution=R, per_class=args.per_class, seed=0))
    held_x, held_y = heldout_images(R, judge)
    held_x = held_x.float() / 127.5 - 1
    torch.manual_seed(args.seed)
    num_classes = int(train_y.max()) + 1
    g = torch.Generator().manual_seed(args.seed)
    if args.network == "D":
        cfg.D.num_classes = num_classes
        if args.width is not None:  # the same width at every resolution up to 16 x 16, as tiny's 64
            cfg.D.channel_max, cfg.D.channel_base = args.width, 16 * args.width
        net = Discriminator(cfg.D)
        lr = cfg.lr_D if args.lr is None else args.lr
        beta1 = cfg.beta1 if args.beta1 is None else args.beta1
        opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(beta1, cfg.beta2), eps=1e-8)

        def logits(x: torch.Tensor) -> torch.Tensor:  # [N, 3, R, R] -> [N, classes]
            if args.center:
                x = x - x.mean(dim=(2, 3), keepdim=True)
            return net(x, None, None, all_classes=True)
    else:
        net = ShapesClassifier(num_classes)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        logits = net
    flips = args.flips or args.network == "judge"

    def augment(x: torch.Tensor) -> torch.Tensor:  # random horizontal flips, as the judges train
        if not flips:
            return x
        flip = (torch.rand(len(x), generator=g) < 0.5)[:, None, None, None]
        return torch.where(flip, x.flip(3), x)

    seen = 0
    while seen < args.images:
        net.train()
        idx = torch.randint(len(train_x), (args.batch,), generator=g)
        loss = F.cross_entropy(logits(augment(train_x[idx])), train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        before, seen = seen, seen + args.batch
        if seen // args.eval_every > before // args.eval_every or seen >= args.images:
            net.eval()
            with torch.no_grad():
                predicted = logits(held_x).argmax(1)
            per_class = [round((predicted[held_y == k] == k).float().mean().item(), 3) for k in range(num_classes)]
            print(json.dumps({"images_seen": seen, "train_loss": round(loss.item(), 3),
                              "heldout_accuracy": round((predicted == held_y).float().mean().item(), 3),
                              "heldout_per_class": per_class}), flush=True)
    if args.save:  # written whole under a temporary name, then renamed
        tmp = Path(args.save).with_name(Path(args.save).name + ".tmp")
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
        chmod_as_created(tmp)
        os.replace(tmp, args.save)


if __name__ == "__main__":
    main()
