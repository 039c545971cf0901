"""Losses: multi-view averaging, R1 against a hand-computed penalty, blur."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tri3d.train.loss import (
    blur_images,
    blur_sigma,
    d_scores_multiview,
    discriminator_fake_loss,
    generator_loss,
    r1_penalty,
)


class LinearD(torch.nn.Module):
    """D(x) = <a, x> + class bias: gradient w.r.t. x is a, everywhere."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = torch.nn.Parameter(torch.randn(3, 8, 8, generator=g))
        self.bias = torch.nn.Parameter(torch.randn(4, generator=g))

    def forward(self, img, c):
        return (img * self.a).sum(dim=(1, 2, 3))[:, None] + self.bias[c][:, None]


def test_multiview_loss_is_mean_of_per_view_losses():
    D = LinearD()
    g = torch.Generator().manual_seed(1)
    images = torch.randn(5, 3, 3, 8, 8, generator=g)
    c = torch.tensor([0, 1, 2, 3, 0])
    scores = d_scores_multiview(D, images, c)
    per_view_G = [F.softplus(-D(images[:, v], c)).mean() for v in range(3)]
    per_view_D = [F.softplus(D(images[:, v], c)).mean() for v in range(3)]
    torch.testing.assert_close(generator_loss(scores), torch.stack(per_view_G).mean())
    torch.testing.assert_close(discriminator_fake_loss(scores), torch.stack(per_view_D).mean())


def test_r1_matches_hand_computed_penalty():
    D = LinearD()
    real = torch.randn(6, 3, 8, 8, requires_grad=True)
    c = torch.zeros(6, dtype=torch.long)
    penalty = r1_penalty(D(real, c), real)
    torch.testing.assert_close(penalty, D.a.detach().square().sum())
    # A quadratic D: D(x) = 0.5 ||x||^2 has gradient x, so R1 = mean ||x||^2.
    quad = 0.5 * real.square().sum(dim=(1, 2, 3))[:, None]
    torch.testing.assert_close(r1_penalty(quad, real), real.detach().square().sum(dim=(1, 2, 3)).mean())


def test_blur_keeps_constants_and_mass_and_fades():
    const = torch.full((2, 3, 16, 16), 0.7)
    torch.testing.assert_close(blur_images(const, 2.0)[..., 6:-6, 6:-6], const[..., 6:-6, 6:-6])
    spike = torch.zeros(1, 1, 21, 21)
    spike[0, 0, 10, 10] = 1
    out = blur_images(spike, 1.5)
    assert abs(out.sum().item() - 1) < 1e-6 and out[0, 0, 10, 10] < 0.5
    assert blur_sigma(0, 10, 200) == 10 and blur_sigma(100, 10, 200) == 5 and blur_sigma(300, 10, 200) == 0
