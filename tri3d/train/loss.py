"""GAN losses: non-saturating logistic, lazy R1, EG3D density regularization, the ray
distortion loss, D-input blur, and multi-view discrimination (fake losses averaged over the
views of each object)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d.models.discriminator import resize_images
from tri3d.ops.upfirdn import upfirdn2d_ref


def blur_images(img: Tensor, sigma: float) -> Tensor:  # [N, C, H, W]
    """Gaussian-like blur used to fade in D's inputs (EG3D): taps 2^-(x/sigma)^2, |x| <= 3 sigma."""
    if sigma <= 0:
        return img
    size = int(math.floor(sigma * 3))
    if size < 1:
        return img
    x = torch.arange(-size, size + 1, dtype=torch.float32, device=img.device)
    taps = torch.exp2(-(x / sigma).square())
    f = torch.outer(taps, taps)
    f = f / f.sum()
    return upfirdn2d_ref(img, f, padding=(size, size, size, size))


def blur_sigma(cur_kimg: float, init_sigma: float, fade_kimg: float) -> float:
    """Blur strength at ``cur_kimg``: linear fade from ``init_sigma`` to 0 over ``fade_kimg``."""
    if fade_kimg <= 0:
        return 0.0
    return max(1 - cur_kimg / fade_kimg, 0.0) * init_sigma


def real_raw_images(real: Tensor, resolution: int, sigma: float) -> Tensor:  # [N, 3, R, R] -> [N, 3, r, r]
    """The dual discriminator's raw input for real images (EG3D): the image resized down to
    the neural rendering resolution, blurred like D's inputs during the blur fade."""
    return blur_images(resize_images(real, resolution), sigma)


def views_to_batch(x: Tensor) -> Tensor:  # [B, V, ...] -> [V * B, ...]
    """Views of ``B`` objects as one batch for D, view-major: ``B`` consecutive samples are
    ``B`` different objects. D's minibatch-std groups are consecutive samples, so with
    ``B >= D.mbstd_group`` no group holds two views of one object: a group of real images
    holds different objects, and a group of fakes that held one object's views would be
    less diverse, which D learns to read as fake (a pull on G to make an object's views
    disagree)."""
    return x.transpose(0, 1).flatten(0, 1)


def batch_to_views(x: Tensor, views: int) -> Tensor:  # [V * B, ...] -> [B, V, ...]
    """The inverse of ``views_to_batch``."""
    return x.unflatten(0, (views, x.shape[0] // views)).transpose(0, 1)


def d_scores_multiview(D, images: Tensor, c: Tensor | None, sigma: float = 0.0,
                       images_raw: Tensor | None = None) -> Tensor:
    """D's logits for every view: images ``[B, V, 3, H, W]`` (and, for a dual D, the raw
    renderings ``[B, V, 3, h, w]``, not blurred, as EG3D) -> ``[B, V]`` (labels repeated);
    D sees them in ``views_to_batch`` order."""
    V = images.shape[1]
    flat = blur_images(views_to_batch(images), sigma)
    raw = None if images_raw is None else views_to_batch(images_raw)
    cv = None if c is None else c.repeat(V)
    return batch_to_views(D(flat, cv, raw)[:, 0], V)


def d_class_scores_multiview(D, images: Tensor, sigma: float = 0.0,
                             images_raw: Tensor | None = None) -> Tensor:
    """D's score of every view under every label: ``[B, V, 3, H, W]`` -> ``[B, V, K]``
    (D sees the views in ``views_to_batch`` order)."""
    V = images.shape[1]
    flat = blur_images(views_to_batch(images), sigma)
    raw = None if images_raw is None else views_to_batch(images_raw)
    return batch_to_views(D(flat, None, raw, all_classes=True), V)


def class_loss(class_scores: Tensor,  # [N, K] D's score of each image under every label
               c: Tensor,  # [N] labels
               ) -> Tensor:
    """Cross-entropy of D's class scores read as logits: D's projection must score an
    image highest under its own label (an auxiliary-classifier term on the projection
    discriminator; ``TrainConfig.class_loss``)."""
    return F.cross_entropy(class_scores, c)


def generator_loss(fake_scores: Tensor) -> Tensor:  # [B, V]
    """Non-saturating G loss, averaged over objects and views: mean softplus(-D(G(z)))."""
    return F.softplus(-fake_scores).mean()


def discriminator_fake_loss(fake_scores: Tensor) -> Tensor:  # [B, V]
    """D loss on generated views, averaged over objects and views: mean softplus(D(G(z)))."""
    return F.softplus(fake_scores).mean()


def discriminator_real_loss(real_scores: Tensor) -> Tensor:  # [N, 1]
    return F.softplus(-real_scores).mean()


def r1_penalty(real_scores: Tensor, *real_inputs: Tensor) -> Tensor:
    """Per-image squared gradient norm of D at the reals, averaged: E ||grad_x D(x)||^2,
    summed over every input D reads (image, and the raw image of a dual D)."""
    grads = torch.autograd.grad(real_scores.sum(), real_inputs, create_graph=True)
    return sum(g.square().sum(dim=(1, 2, 3)) for g in grads).mean()


def distortion_loss(distortion: Tensor) -> Tensor:  # [B, V, 1, r, r] every pixel's ray distortion
    """Mean ray distortion of G's views (``tri3d.render.distortion``): pulls each ray's
    compositing weights onto one surface. Without it, fog that is painted to look right
    from every view satisfies D, and its expected depth is flat (measured: most views of
    an early ``tiny`` generator are called flat cards by the depth judge)."""
    return distortion.mean()


def density_regularization(G, planes: Tensor, points: int = 1000, p_dist: float = 0.004,
                           generator: torch.Generator | None = None) -> Tensor:
    """EG3D's density smoothness term: L1 between raw density at random points in the box
    and at points moved by N(0, p_dist^2)."""
    B = planes.shape[0]
    half = G.renderer.box_warp / 2
    x = (torch.rand(B, points, 3, device=planes.device, generator=generator) * 2 - 1) * half
    y = x + torch.randn(x.shape, device=x.device, generator=generator) * p_dist
    sigma = G.sample_density(planes, torch.cat([x, y], dim=1))
    return F.l1_loss(sigma[:, :points], sigma[:, points:])
