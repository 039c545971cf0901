"""The training loop: builds the networks and optimizers, runs the G and D steps and the
EMA, and composes the run state (``run_state``: folder, data order, resume) and the
reporting (``reporting``: logs, grids, metrics)."""
from __future__ import annotations

import copy
import inspect
import math
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from tri3d.data import XFlipDataset
from tri3d.models import Discriminator, TriplaneGenerator
from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses
from tri3d.runs import checkpoint
from tri3d.runs.config import TrainConfig
from tri3d.train.loss import (
    batch_to_views,
    blur_images,
    blur_sigma,
    class_loss,
    d_class_scores_multiview,
    d_scores_multiview,
    density_regularization,
    discriminator_fake_loss,
    discriminator_real_loss,
    distortion_loss,
    generator_loss,
    r1_penalty,
    real_raw_images,
    views_to_batch,
)
from tri3d.train.distributed import all_reduce_mean_, barrier, check_fault_injection, init_from_env, rank_device
from tri3d.train.errors import TrainingStopped
from tri3d.train.reporting import Reporter
from tri3d.train.run_state import (
    StepBatchSampler,
    capture_train_state,
    load_dataset,
    new_run_dir,
    prepare_run_dir,
    resolve_device,
    restore_train_state,
)
from tri3d.utils.progress import progress_bar
from tri3d.utils.timing import StageTimer


class Trainer:
    """Trains ``TriplaneGenerator`` against ``Discriminator`` from a ``TrainConfig``.

    Args:
        cfg: the run configuration (validated here).
        resume: a run folder or snapshot to continue from (same next losses as an
            uninterrupted run with the same seed).
        run_dir: where to write; default a new numbered folder under ``cfg.run_dir`` (or
            the resumed run's folder).
        progress: show a progress bar.
    """

    def __init__(self, cfg: TrainConfig, *, resume: str | Path | None = None, run_dir: str | Path | None = None,
                 progress: bool = True):
        cfg.validate()
        self.dist = init_from_env(cfg.device)
        if cfg.batch % self.dist.world_size:
            raise ValueError(f"batch ({cfg.batch}) must be divisible by the number of processes ({self.dist.world_size})")
        self.cfg, self.progress = cfg, progress and self.dist.is_main
        objects_per_process = cfg.batch // self.dist.world_size
        if cfg.views > 1 and objects_per_process < cfg.D.mbstd_group:
            warnings.warn(f"tri3d: {objects_per_process} objects per process, fewer than D's "
                          f"minibatch-std group ({cfg.D.mbstd_group}): a group will hold two views of one object, "
                          "which D can tell from a group of real images", stacklevel=2)
        self.device = rank_device(self.dist, cfg.device) if self.dist.enabled else resolve_device(cfg.device)
        self.dataset = load_dataset(cfg)
        if self.dataset.resolution != cfg.G.image_resolution:
            raise ValueError(f"dataset {self.dataset.path} has resolution {self.dataset.resolution}, the config "
                             f"expects G.image_resolution={cfg.G.image_resolution}")
        if cfg.G.num_classes == 0 and self.dataset.num_classes > 0:
            cfg.G.num_classes = cfg.D.num_classes = self.dataset.num_classes
        if cfg.G.num_classes != self.dataset.num_classes:
            raise ValueError(f"config has {cfg.G.num_classes} classes, dataset {self.dataset.num_classes}")
        if cfg.class_loss > 0 and cfg.G.num_classes == 0:
            raise ValueError(f"class_loss {cfg.class_loss} needs class labels; dataset {self.dataset.path} has none")
        torch.manual_seed(cfg.seed)
        self.G = TriplaneGenerator(cfg.G).to(self.device)
        self.D = Discriminator(cfg.D).to(self.device)
        if cfg.precision == "bf16":
            self.G.synthesis_dtype = self.D.mixed_dtype = torch.bfloat16
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.timer = StageTimer(self.device)
        self.G.renderer.timer = self.timer  # the EMA copy keeps the no-op timer
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = make_adam(self.G, cfg.lr_G, betas)
        self.opt_D = make_adam(self.D, cfg.lr_D, betas)
        self.intrinsics = fov_to_intrinsics(cfg.fov_deg).to(self.device)
        self.step, self.nimg = 0, 0
        self.clock = time.monotonic  # seconds, for max_minutes
        self.stopped_by_time = False  # train() ended at max_minutes, before total_kimg
        self.lr_scale = 1.0  # the learning rates' multiplier of the next step (lr_anneal)
        self.nonfinite_steps = self.nonfinite_in_a_row = 0  # steps skipped for non-finite losses or gradients
        # Draws that define a step (latents, classes, cameras) come from this stream, the same
        # on every rank; per-sample draws inside the networks use the global RNG.
        self.shared_rng = torch.Generator().manual_seed(cfg.seed + 1)
        if resume is not None:
            self._resume(Path(resume))
            self.run_dir = Path(run_dir) if run_dir else checkpoint.find_snapshot(resume).parent
        else:
            self.run_dir = Path(run_dir) if run_dir else self._shared_new_run_dir()
        if self.dist.is_main:
            prepare_run_dir(self.run_dir, self.step if resume is not None else None)
        self.reporter = Reporter(cfg, self.run_dir, self.dist, self.device)
        self.G_ddp, self.D_ddp = self.G, self.D
        if self.dist.enabled:
            self.G_ddp, self.D_ddp = wrap_ddp(self.G, self.device), wrap_ddp(self.D, self.device)
            # Per-rank seeds for per-sample draws (noise, jitter), a function of (seed, step, rank).
            torch.manual_seed(cfg.seed * 7919 + self.step * 104729 + self.dist.rank)

    def _shared_new_run_dir(self) -> Path:
        """A new numbered run folder, chosen by rank 0 and shared with the other ranks."""
        path = [str(new_run_dir(self.cfg.run_dir, self.cfg.preset)) if self.dist.is_main else None]
        if self.dist.enabled:
            torch.distributed.broadcast_object_list(path, src=0)
        return Path(path[0])

    # ---------------------------------------------------------------- state
    def _resume(self, path: Path) -> None:
        snap = checkpoint.find_snapshot(path)
        for name, module in (("G", self.G), ("G_ema", self.G_ema), ("D", self.D)):
            checkpoint.load_weights(snap, name, module, self.device)
        self.step, self.nimg = restore_train_state(checkpoint.load_train_state(snap), self.opt_G, self.opt_D,
                                                   self.shared_rng, self.device)

    def train_state(self) -> dict:
        return capture_train_state(self.step, self.nimg, self.opt_G, self.opt_D, self.shared_rng, self.device)

    def save_snapshot(self) -> Path:
        """Rank 0 writes the snapshot and the sample grid; metrics (optional) use every rank."""
        path = self.run_dir / f"snapshot-{self.step:08d}"
        if self.dist.is_main:
            path = checkpoint.save_snapshot(self.run_dir, self.step, self.cfg.to_dict(),
                                            {"G": self.G, "G_ema": self.G_ema, "D": self.D}, self.train_state())
            self.reporter.save_grid(self.G_ema, self.intrinsics, self.run_dir / f"samples-{self.step:08d}.png")
        if self.cfg.metrics_detector is not None:
            self.reporter.run_metrics(self.G_ema, self.dataset, path, self.step, self.cur_kimg, D=self.D)
        return path

    # ---------------------------------------------------------------- schedule
    @property
    def cur_kimg(self) -> float:
        return self.nimg / 1000

    def views_now(self) -> int:
        return self.cfg.views if self.cur_kimg >= self.cfg.multiview_start_kimg else 1

    def neural_resolution_now(self) -> int:
        final = self.cfg.G.neural_rendering_resolution
        initial = self.cfg.neural_rendering_resolution_initial
        if initial is None or initial == final:
            return final
        alpha = min(self.cur_kimg / max(self.cfg.neural_rendering_resolution_fade_kimg, 1e-8), 1.0)
        return int(round(initial * (1 - alpha) + final * alpha))

    def center_fraction_now(self) -> float:
        """The share of each image's mean colour a centring D removes (``D.center_input``):
        ramped in linearly over ``center_input_rampup_kimg``."""
        ramp = self.cfg.center_input_rampup_kimg
        return min(self.cur_kimg / ramp, 1.0) if ramp > 0 else 1.0

    def sample_cameras(self, batch: int, views: int) -> torch.Tensor:  # [batch, views, 4, 4]
        """This rank's slice of ``batch * world_size`` cameras drawn from the shared stream."""
        min_angle = self.cfg.min_view_angle_deg if views > 1 else 0.0
        cams = sample_multiview_poses(batch * self.dist.world_size, views, self.cfg.camera_radius, min_angle,
                                      self.cfg.view_perturb_deg, generator=self.shared_rng)
        return self._my_slice(cams).to(self.device)

    def _my_slice(self, t: torch.Tensor) -> torch.Tensor:
        n = t.shape[0] // self.dist.world_size
        return t[self.dist.rank * n : (self.dist.rank + 1) * n]

    # ---------------------------------------------------------------- one iteration
    def generate(self, G, z, c, views: int):
        nr = self.neural_resolution_now()
        training = G is self.G_ddp
        out = G(z, c, self.sample_cameras(z.shape[0], views), self.intrinsics, neural_rendering_resolution=nr,
                update_w_avg=training, noise_mode=self.cfg.noise_mode,
                with_distortion=training and self.cfg.distortion_reg > 0)
        if training:  # the mean of the ranks' updates equals the update with the global batch
            all_reduce_mean_(self.G.mapping.w_avg)
        image = out["image"]
        res = self.cfg.G.image_resolution
        if image.shape[-1] != res:  # faded neural resolution without super-resolution
            B, V = image.shape[:2]
            image = F.interpolate(image.flatten(0, 1), size=(res, res), mode="bilinear",
                                  align_corners=False).unflatten(0, (B, V))
        return image, out

    def train_step(self, real_u8: torch.Tensor, c_real: torch.Tensor) -> dict[str, float]:
        """One G step and one D step on this rank's slice of the global batch."""
        cfg, G, D = self.cfg, self.G, self.D
        check_fault_injection(self.dist)
        B = real_u8.shape[0]
        world = self.dist.world_size
        real = real_u8.to(self.device).float() / 127.5 - 1
        c_real = c_real.to(self.device) if cfg.G.num_classes > 0 else None
        sigma = blur_sigma(self.cur_kimg, cfg.blur_init_sigma, cfg.blur_fade_kimg)
        D.center_fraction = self.center_fraction_now()
        views = self.views_now()
        z = self._my_slice(torch.randn(B * world, cfg.G.z_dim, generator=self.shared_rng)).to(self.device)
        c_gen = None
        if cfg.G.num_classes > 0:
            pick = torch.randint(len(self.dataset), (B * world,), generator=self.shared_rng)
            c_gen = self._my_slice(self.dataset.labels[pick]).to(self.device)

        for opt, lr in ((self.opt_G, cfg.lr_G), (self.opt_D, cfg.lr_D)):  # this step's rates (lr_anneal)
            for group in opt.param_groups:
                group["lr"] = lr * self.lr_scale

        # Generator step: non-saturating loss, mean over objects and views.
        G.requires_grad_(True)
        D.requires_grad_(False)
        timer = self.timer
        fake, out = self.generate(self.G_ddp, z, c_gen, views)
        dual = cfg.D.dual
        with_class_loss = cfg.class_loss > 0 and c_gen is not None
        with timer.stage("discriminator"):
            if with_class_loss:  # every label's score from one pass; the GAN loss reads the view's own
                all_scores = d_class_scores_multiview(D, fake, sigma, out["image_raw"] if dual else None)
                fake_scores = all_scores.gather(2, c_gen[:, None, None].expand(-1, views, 1))[..., 0]
            else:
                fake_scores = d_scores_multiview(D, fake, c_gen, sigma, out["image_raw"] if dual else None)
        loss_G = generator_loss(fake_scores)
        stats = {"loss_G": loss_G.item(), "D_fake": fake_scores.mean().item(), "views": views,
                 "coverage": out["opacity"].mean().item()}  # G's mean opacity: near 1 when G paints a wall
        if with_class_loss:
            class_G = class_loss(all_scores.flatten(0, 1), c_gen.repeat_interleave(views))
            loss_G = loss_G + cfg.class_loss * class_G
            stats["class_G"] = class_G.item()
        if cfg.distortion_reg > 0:
            distortion = distortion_loss(out["distortion"])
            loss_G = loss_G + cfg.distortion_reg * distortion
            stats["distortion"] = distortion.item()
        if cfg.density_reg > 0 and self.step % cfg.density_reg_every == 0:
            reg = density_regularization(G, out["planes"], p_dist=cfg.density_reg_p_dist)
            loss_G = loss_G + cfg.density_reg * reg
            stats["density_reg"] = reg.item()
        self.opt_G.zero_grad(set_to_none=True)
        with timer.stage("backward"):
            loss_G.backward()
        with timer.stage("optimizer"):
            stats["skipped_G"] = float(not self._apply_if_finite(self.opt_G, G, loss_G))

        # Discriminator step (+ lazy R1 every r1_interval steps, scaled by the interval).
        G.requires_grad_(False)
        D.requires_grad_(True)
        # One D forward over fakes and reals (DDP: one forward per backward); lazy R1 reads
        # its gradient from the same forward. Minibatch-std groups are consecutive, so with
        # batch sizes that are multiples of the group size they never mix fakes and reals,
        # and the fakes go view-major (``views_to_batch``) so no group holds one object twice.
        r1_step = cfg.r1_gamma > 0 and self.step % cfg.r1_interval == 0
        real_in = real.detach().requires_grad_(r1_step)
        fake_flat = views_to_batch(fake.detach())
        c_all = None if c_gen is None else torch.cat([c_gen.repeat(views), c_real])
        raw_all, r1_inputs = None, (real_in,)
        if dual:  # EG3D: the reals' raw image is blurred during the fade, the fakes' is not
            real_raw = real_raw_images(real, out["image_raw"].shape[-1], sigma).detach().requires_grad_(r1_step)
            raw_all, r1_inputs = torch.cat([views_to_batch(out["image_raw"].detach()), real_raw]), (real_in, real_raw)
        n_fake = fake_flat.shape[0]
        with timer.stage("discriminator"):
            images = blur_images(torch.cat([fake_flat, real_in]), sigma)
            if with_class_loss:  # one D forward (DDP) gives every label's score
                all_scores = self.D_ddp(images, None, raw_all, all_classes=True)
                scores = all_scores.gather(1, c_all[:, None])
            else:
                scores = self.D_ddp(images, c_all, raw_all)
        fake_scores, real_scores = batch_to_views(scores[:n_fake, 0], views), scores[n_fake:]
        loss_D = discriminator_fake_loss(fake_scores) + discriminator_real_loss(real_scores)
        stats.update(loss_D=loss_D.item(), D_real=real_scores.mean().item())
        if with_class_loss:  # D learns the classes from real images only
            class_D = class_loss(all_scores[n_fake:], c_real)
            loss_D = loss_D + cfg.class_loss * class_D
            stats["class_D"] = class_D.item()
        if r1_step:
            with timer.stage("discriminator"):
                r1 = r1_penalty(real_scores, *r1_inputs)
            loss_D = loss_D + r1 * (cfg.r1_gamma / 2) * cfg.r1_interval
            stats["r1"] = r1.item()
        self.opt_D.zero_grad(set_to_none=True)
        with timer.stage("backward"):
            loss_D.backward()
        with timer.stage("optimizer"):
            stats["skipped_D"] = float(not self._apply_if_finite(self.opt_D, D, loss_D))
        G.requires_grad_(True)
        self._count_nonfinite(stats["skipped_G"] or stats["skipped_D"])

        self.nimg += B * world
        self.step += 1
        self._update_ema(B * world)
        return stats

    def _apply_if_finite(self, opt: torch.optim.Optimizer, module: torch.nn.Module, loss: torch.Tensor) -> bool:
        """Step ``opt`` only if ``loss`` and every gradient of ``module`` are finite: one
        reduction (and one sync), agreed by all ranks; otherwise drop the gradients."""
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        total = loss.detach().float().reshape(1)
        if grads:
            total = total + torch.stack(torch._foreach_norm(grads)).float().sum()
        all_reduce_mean_(total)  # a non-finite value on any rank makes every rank skip
        if bool(torch.isfinite(total)):
            opt.step()
            return True
        opt.zero_grad(set_to_none=True)
        return False

    def _count_nonfinite(self, skipped: bool) -> None:
        """Count skipped steps; ``max_nonfinite_steps`` in a row stop the run."""
        self.nonfinite_steps += int(skipped)
        self.nonfinite_in_a_row = self.nonfinite_in_a_row + 1 if skipped else 0
        if self.nonfinite_in_a_row >= self.cfg.max_nonfinite_steps:
            raise TrainingStopped(f"{self.nonfinite_in_a_row} training steps in a row had non-finite losses or "
                               f"gradients (step {self.step}); stopping. No update was applied in them, and no "
                               f"snapshot holds non-finite weights: resume from the last one in {self.run_dir}, e.g. "
                               "with a lower learning rate")

    def _update_ema(self, batch: int) -> None:
        ema_kimg = self.cfg.ema_kimg if self.cfg.ema_kimg is not None else batch * 10 / 32
        update_ema(self.G_ema, self.G, batch, self.nimg, ema_kimg, self.cfg.ema_rampup)

    def data_loader(self) -> torch.utils.data.DataLoader:
        """This rank's real images and labels from the current step on, batch by batch (a pure
        function of seed and step); with ``mirror`` drawn from the images and their mirror
        images (the metrics keep reading ``self.dataset``, unflipped)."""
        cfg = self.cfg
        images = XFlipDataset(self.dataset) if cfg.mirror else self.dataset
        return torch.utils.data.DataLoader(
            images, batch_sampler=StepBatchSampler(len(images), cfg.batch, cfg.seed, self.step, self.dist.rank,
                                                   self.dist.world_size),
            num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed),  # its worker seed must not draw from the global RNG
        )

    def shared_elapsed(self, seconds: float) -> float:
        """Rank 0's ``seconds`` of this call's training, the same on every rank: rank 0's
        clock decides when ``max_minutes`` runs out and how far the learning rates have
        annealed."""
        if not self.dist.enabled:
            return seconds
        elapsed = torch.tensor([seconds], dtype=torch.float64, device=self.device)
        torch.distributed.broadcast(elapsed, src=0)
        return float(elapsed.item())

    def budget_progress(self, elapsed: float | None) -> float:
        """The share of the run's budget spent: of ``max_minutes`` in this call (``elapsed``
        seconds, rank 0's) with a time cap, else of ``total_kimg``."""
        if elapsed is not None:
            return min(elapsed / (self.cfg.max_minutes * 60), 1.0)
        return min(self.nimg / (self.cfg.total_kimg * 1000), 1.0)

    def train(self) -> Path:
        """Run until ``total_kimg`` or, with ``max_minutes``, until that much wall clock has
        passed in this call (``stopped_by_time`` then); snapshot every ``snapshot_kimg`` and
        at the end."""
        cfg = self.cfg
        self.reporter.start()
        loader = self.data_loader()
        total_steps = math.ceil(cfg.total_kimg * 1000 / cfg.batch)
        snapshot_every = max(1, round(cfg.snapshot_kimg * 1000 / cfg.batch))
        bar = progress_bar(total_steps, initial=self.step, enabled=self.progress, unit="step")
        window, t0, nimg0 = [], time.perf_counter(), self.nimg
        capped = cfg.max_minutes > 0
        started = self.clock() if capped else None
        self.lr_scale = lr_scale(self.budget_progress(0.0 if capped else None), cfg.lr_anneal, cfg.lr_anneal_floor)
        for real, c in loader:
            if self.step >= total_steps:
                break
            stats = self.train_step(real, c)
            stats["lr_scale"] = self.lr_scale
            window.append(stats)
            postfix = {"G": f"{stats['loss_G']:.3f}", "D": f"{stats['loss_D']:.3f}", "kimg": f"{self.cur_kimg:.2f}"}
            elapsed = None
            if capped:
                elapsed = self.shared_elapsed(self.clock() - started)
                self.stopped_by_time = elapsed >= cfg.max_minutes * 60
                postfix["left"] = f"{max(cfg.max_minutes * 60 - elapsed, 0) / 60:.1f}min"
            self.lr_scale = lr_scale(self.budget_progress(elapsed), cfg.lr_anneal, cfg.lr_anneal_floor)
            bar.update(1)
            bar.set_postfix(**postfix)
            if self.step % cfg.log_every == 0:
                self.reporter.log(window, timer=self.timer, step=self.step, kimg=self.cur_kimg, nimg=self.nimg,
                                  images=self.nimg - nimg0, seconds=time.perf_counter() - t0,
                                  nonfinite_steps=self.nonfinite_steps,
                                  neural_resolution=self.neural_resolution_now())
                window, t0, nimg0 = [], time.perf_counter(), self.nimg
            if self.step % snapshot_every == 0 or self.step >= total_steps or self.stopped_by_time:
                self.save_snapshot()
            if self.stopped_by_time:
                break
        bar.close()
        self.reporter.close()
        self.reporter.record_rank_checksums(self.G, self.D)
        barrier()
        return self.run_dir


def lr_scale(progress: float, anneal: float, floor: float) -> float:
    """The learning rates' multiplier when ``progress`` (in [0, 1]) of the run's budget is
    spent: 1 until the last ``anneal`` of the budget, then linear down to ``floor`` at its
    end (``TrainConfig.lr_anneal``; ``anneal`` 0: always 1)."""
    start = 1 - anneal
    if anneal <= 0 or progress <= start:
        return 1.0
    return max(floor, 1 - (1 - floor) * (progress - start) / anneal)


def make_adam(
    module: torch.nn.Module,
    lr: float,
    betas: tuple[float, float],
) -> torch.optim.Adam:
    """StyleGAN2's Adam (eps 1e-8) over ``module``'s parameters, PyTorch's per-tensor step.
    Its fused step (about 3 ms less of a ~107 ms ``tiny`` CPU step) is the same rule to
    rounding; it was tried and reverted when its runs scored lower (README, "Does it learn
    3D?"), and the main job's table is of this step."""
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, eps=1e-8)


@torch.no_grad()
def update_ema(
    G_ema: torch.nn.Module,
    G: torch.nn.Module,
    batch: int,  # images in this step (all ranks)
    nimg: int,  # images seen so far
    ema_kimg: float,  # half-life in thousands of images
    rampup: float | None,  # half-life at most nimg x rampup (None: none)
) -> None:
    """Move ``G_ema``'s parameters toward ``G``'s with a half-life of ``min(ema_kimg x 1000,
    nimg x rampup)`` images (StyleGAN2-ADA's EMA); buffers are copied."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, nimg * rampup)
    beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def wrap_ddp(module: torch.nn.Module, device: torch.device) -> DistributedDataParallel:
    """DDP without per-forward buffer broadcasts (``w_avg`` is all-reduced explicitly)."""
    ids = [device.index] if device.type == "cuda" else None
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)
