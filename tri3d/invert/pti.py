"""Pivotal tuning inversion (Roich et al.) of a triplane generator from one image.

Stage 1 finds a pivot ``w`` (or per-layer ``w+``) with the generator frozen, starting
from the mapping network's mean ``w`` for the class; stage 2 freezes the pivot and
fine-tunes the generator (synthesis, decoder, super-resolution) so the render at the
given camera matches the image, optionally keeping the generator unchanged around the
pivot (PTI's locality regularization).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d.utils.progress import progress_bar


@dataclass
class InversionConfig:
    w_steps: int = 300
    pti_steps: int = 200
    lr_w: float = 0.01
    lr_pti: float = 3e-4
    w_plus: bool = False
    w_avg_samples: int = 256
    pixel_weight: float = 1.0
    perceptual_weight: float = 1.0
    locality_weight: float = 0.0  # > 0: PTI locality regularization
    locality_alpha: float = 30.0
    seed: int = 0

    def validate(self) -> None:
        for name in ("w_steps", "pti_steps", "w_avg_samples"):
            if getattr(self, name) < 0 or (name == "w_avg_samples" and self.w_avg_samples < 1):
                raise ValueError(f"{name} must be >= {1 if name == 'w_avg_samples' else 0}, got {getattr(self, name)}")
        for name in ("lr_w", "lr_pti"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InversionResult:
    ws: Tensor  # [1, num_ws, w_dim] the pivot
    ws_init: Tensor  # [1, num_ws, w_dim] the class-average start
    G: torch.nn.Module  # the tuned generator
    losses: dict = field(default_factory=lambda: {"w": [], "pti": []})


def class_average_w(G, c: int | None, samples: int, seed: int) -> Tensor:  # -> [1, num_ws, w_dim]
    """Mean of ``mapping(z, c)`` over ``samples`` latents (``MappingNetwork.mean_w``), one per layer."""
    mapping = G.mapping
    return mapping.mean_w(c, samples, seed).repeat(1, mapping.num_ws, 1)


def render(G, ws: Tensor, cam2world: Tensor, intrinsics: Tensor, resolution: int | None = None) -> dict:
    """One view of ``ws`` (deterministic sampling, constant noise). ``cam2world [4, 4]``."""
    with G.deterministic_rendering():
        return G.synthesize(ws, cam2world[None, None], intrinsics, neural_rendering_resolution=resolution,
                            noise_mode="const")


def invert(G, target: Tensor, *, c: int | None, cam2world: Tensor, intrinsics: Tensor,
           perceptual: Callable[[Tensor, Tensor], Tensor], cfg: InversionConfig | None = None,
           progress: bool = False) -> InversionResult:
    """Invert ``target [3, H, W]`` (in [-1, 1], H = W = the generator's image resolution).

    Returns the pivot, the start, the tuned generator copy and per-step losses.
    """
    cfg = cfg or InversionConfig()
    cfg.validate()
    res = G.config.image_resolution
    if target.shape != (3, res, res):
        raise ValueError(f"target must have shape [3, {res}, {res}], got {list(target.shape)}")
    if c is not None and not 0 <= c < max(G.config.num_classes, 1):
        raise ValueError(f"class must be in [0, {G.config.num_classes}), got {c}")
    device = next(G.parameters()).device
    target = target.to(device)[None]
    cam2world = cam2world.to(device)
    G_frozen = G.eval().requires_grad_(False)
    torch.manual_seed(cfg.seed)

    def loss_fn(image: Tensor) -> Tensor:
        return (cfg.pixel_weight * F.mse_loss(image, target)
                + cfg.perceptual_weight * perceptual(image, target).mean())

    ws_init = class_average_w(G_frozen, c, cfg.w_avg_samples, cfg.seed)
    w_param = (ws_init.clone() if cfg.w_plus else ws_init[:, :1].clone()).requires_grad_(True)
    expand = (lambda w: w) if cfg.w_plus else (lambda w: w.expand(-1, ws_init.shape[1], -1))
    opt = torch.optim.Adam([w_param], lr=cfg.lr_w, betas=(0.9, 0.999))
    result = InversionResult(ws=ws_init, ws_init=ws_init, G=G_frozen)
    bar = progress_bar(cfg.w_steps + cfg.pti_steps, enabled=progress, unit="step")

    def step(optimizer: torch.optim.Optimizer, loss: Tensor, stage: str) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result.losses[stage].append(loss.item())
        bar.update(1)
        bar.set_postfix(stage=stage, loss=f"{loss.item():.4f}")

    for _ in range(cfg.w_steps):
        step(opt, loss_fn(render(G_frozen, expand(w_param), cam2world, intrinsics)["image"][:, 0]), "w")
    pivot = expand(w_param.detach())

    G_tuned = copy.deepcopy(G_frozen).train().requires_grad_(True)
    G_tuned.mapping.requires_grad_(False)
    params = [p for p in G_tuned.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr_pti)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in range(cfg.pti_steps):
        loss = loss_fn(render(G_tuned, pivot, cam2world, intrinsics)["image"][:, 0])
        if cfg.locality_weight > 0:
            z = torch.randn(1, G.config.z_dim, generator=g).to(device)
            label = torch.tensor([c], device=device) if c is not None else None
            w_rand = G_frozen.mapping(z, label)
            direction = w_rand - pivot
            w_near = pivot + cfg.locality_alpha * direction / direction.norm().clamp(min=1e-8) * torch.rand(
                (), generator=g).to(device)
            with torch.no_grad():
                ref_img = render(G_frozen, w_near, cam2world, intrinsics)["image"][:, 0]
            near = render(G_tuned, w_near, cam2world, intrinsics)["image"][:, 0]
            loss = loss + cfg.locality_weight * F.mse_loss(near, ref_img)
        step(opt, loss, "pti")
    bar.close()
    result.ws, result.G = pivot, G_tuned.eval().requires_grad_(False)
    return result


def psnr(a: Tensor, b: Tensor) -> float:
    """PSNR in dB of images in [-1, 1]."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean().item()
    return float("inf") if mse == 0 else -10 * torch.log10(torch.tensor(mse)).item()


def depth_error(pred: Tensor, ref: Tensor, mask: Tensor | None = None, *, scale_invariant: bool = False) -> float:
    """Mean absolute depth error over ``mask``; with ``scale_invariant`` the prediction is
    first scaled by the ratio of medians (for relative references such as DPT)."""
    mask = torch.ones_like(ref, dtype=torch.bool) if mask is None else mask
    p, r = pred[mask], ref[mask]
    if p.numel() == 0:
        raise ValueError("depth_error: the mask selects no pixel")
    if scale_invariant:
        p = p * (r.median() / p.median())
    return (p - r).abs().mean().item()
