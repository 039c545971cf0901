"""Control experiment: does the GAN machinery learn the shapes' classes in the tiny budget?

Trains tri3d's own mapping, StyleGAN2 synthesis (producing RGB images directly, no
triplane, no rendering) and discriminator as a plain class-conditional 2D GAN on the
tiny preset's images, with the tiny preset's losses and hyper-parameters, and scores the
rgb class accuracy of its samples with the rgb shapes judge every ``--eval-every``
seconds. If this does not learn the classes, the 3D generator cannot either.

    python experiments/gan2d_control.py --minutes 10 --seed 0
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from tri3d.export import save_png
from tri3d.metrics.detector import load_detector
from tri3d.metrics.evaluate import to_uint8
from tri3d.models import Discriminator, MappingNetwork, SynthesisNetwork
from tri3d.runs.config import preset
from tri3d.train.reporting import d_class_accuracy
from tri3d.train.run_state import StepBatchSampler, load_dataset
from tri3d.train.loss import (
    blur_images,
    blur_sigma,
    discriminator_fake_loss,
    discriminator_real_loss,
    generator_loss,
    r1_penalty,
)


@torch.no_grad()
def class_accuracy(mapping, synthesis, judge, num_classes: int, n: int = 500) -> float:
    g = torch.Generator().manual_seed(123)
    z = torch.randn(n, mapping.z_dim, generator=g)
    c = torch.randint(num_classes, (n,), generator=g)
    images = synthesis(mapping(z, c), noise_mode="const")
    return float((judge.probabilities(to_uint8(images)).argmax(1) == c).float().mean())


def d_accuracy_on_training_images(D, dataset, n: int = 500) -> float:
    """D's class accuracy (``reporting.d_class_accuracy``) on ``n`` fixed training images."""
    g = torch.Generator().manual_seed(321)
    idx = torch.randperm(len(dataset), generator=g)[:n]
    real = torch.stack([dataset[int(i)][0] for i in idx]).float() / 127.5 - 1
    return d_class_accuracy(D, real, dataset.labels[idx])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--eval-every", type=float, default=120.0, help="seconds between evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=None, help="image resolution (default: the preset's)")
    parser.add_argument("--grid", default=None, help="PNG of 8 samples per class at the end (rows = classes)")
    parser.add_argument("--class-loss", type=float, default=0.0,
                        help="weight of a cross-entropy on D's class scores (reals for D, fakes for G)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="override config fields, e.g. D.mapping_layers=2 lr_D=0.002 batch=16")
    args = parser.parse_args()
    cfg = preset("tiny")
    if args.resolution:
        cfg.G.image_resolution = cfg.G.neural_rendering_resolution = cfg.D.image_resolution = args.resolution
    for item in args.set:
        field, value = item.split("=", 1)
        owner = cfg
        *parents, name = field.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, type(getattr(owner, name))(json.loads(value)))
    dataset = load_dataset(cfg)
    K = dataset.num_classes
    torch.manual_seed(args.seed)
    g = cfg.G
    synthesis = SynthesisNetwork(g.w_dim, g.image_resolution, 3, channel_base=g.channel_base,
                                 channel_max=g.channel_max, extra_blocks=g.extra_blocks)
    mapping = MappingNetwork(g.z_dim, K, g.w_dim, synthesis.num_ws, num_layers=g.mapping_layers)
    cfg.D.num_classes = K
    D = Discriminator(cfg.D)
    opt_G = torch.optim.Adam([*mapping.parameters(), *synthesis.parameters()], lr=cfg.lr_G, betas=(0.0, 0.99))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_D, betas=(0.0, 0.99))
    judge = load_detector("shapes", dataset=dataset, judge=cfg.metrics_judge)
    loader = iter(torch.utils.data.DataLoader(dataset, batch_sampler=StepBatchSampler(len(dataset), cfg.batch,
                                                                                        args.seed, 0)))
    t0 = last_eval = time.perf_counter()
    nimg, step = 0, 0
    def row(seconds: float) -> dict:
        return {"seconds": round(seconds, 1), "kimg": nimg / 1000,
                "class_accuracy": class_accuracy(mapping, synthesis, judge, K),
                "d_class_accuracy": d_accuracy_on_training_images(D, dataset)}

    rows = [row(0.0)]
    print(json.dumps(rows[-1]), flush=True)
    while time.perf_counter() - t0 < args.minutes * 60:
        real_u8, c_real = next(loader)
        real = real_u8.float() / 127.5 - 1
        sigma = blur_sigma(nimg / 1000, cfg.blur_init_sigma, cfg.blur_fade_kimg)
        z = torch.randn(cfg.batch, g.z_dim)
        c = dataset.labels[torch.randint(len(dataset), (cfg.batch,))]
        fake = synthesis(mapping(z, c))
        loss_G = generator_loss(D(blur_images(fake, sigma), c))
        if args.class_loss:
            loss_G = loss_G + args.class_loss * F.cross_entropy(D(blur_images(fake, sigma), all_classes=True), c)
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        r1_step = step % cfg.r1_interval == 0
        real_in = real.requires_grad_(r1_step)
        scores = D(blur_images(torch.cat([fake.detach(), real_in]), sigma), torch.cat([c, c_real]))
        loss_D = discriminator_fake_loss(scores[: cfg.batch]) + discriminator_real_loss(scores[cfg.batch:])
        if args.class_loss:
            loss_D = loss_D + args.class_loss * F.cross_entropy(D(blur_images(real, sigma), all_classes=True), c_real)
        if r1_step:
            loss_D = loss_D + r1_penalty(scores[cfg.batch:], real_in) * (cfg.r1_gamma / 2) * cfg.r1_interval
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        nimg += cfg.batch
        step += 1
        if time.perf_counter() - last_eval >= args.eval_every:
            last_eval = time.perf_counter()
            rows.append(row(last_eval - t0))
            print(json.dumps(rows[-1]), flush=True)
    rows.append(row(time.perf_counter() - t0))
    print(json.dumps(rows[-1]), flush=True)
    if args.grid:
        with torch.no_grad():
            c = torch.arange(K).repeat_interleave(8)
            images = to_uint8(synthesis(mapping(torch.randn(len(c), g.z_dim), c), noise_mode="const"))
        R = images.shape[-1]
        save_png(images.reshape(K, 8, 3, R, R).permute(0, 3, 1, 4, 2).reshape(K * R, 8 * R, 3).numpy(), args.grid)


if __name__ == "__main__":
    main()
