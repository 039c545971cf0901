"""Losses: multi-view averaging and ordering, R1 against a hand-computed penalty, blur."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tri3d.train.loss import (
    blur_images,
    blur_sigma,
    d_class_scores_multiview,
    d_scores_multiview,
    discriminator_fake_loss,
    generator_loss,
    r1_penalty,
    real_raw_images,
)


class LinearD(torch.nn.Module):
    """D(x) = <a, x> + class bias: gradient w.r.t. x is a, everywhere."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = torch.nn.Parameter(torch.randn(3, 8, 8, generator=g))
        self.bias = torch.nn.Parameter(torch.randn(4, generator=g))

    def forward(self, img, c, img_raw=None):
        assert img_raw is None
        return (img * self.a).sum(dim=(1, 2, 3))[:, None] + self.bias[c][:, None]


class LinearDualD(LinearD):
    """D(x, raw) = <a, x> + <b, raw> + class bias: R1 reads both gradients."""

    def __init__(self):
        super().__init__()
        self.b = torch.nn.Parameter(torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(5)))

    def forward(self, img, c, img_raw=None):
        return super().forward(img, c) + (img_raw * self.b).sum(dim=(1, 2, 3))[:, None]


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


class RecordingD(torch.nn.Module):
    """Scores an image by its mean value (plus 100 x the label, or every label's column);
    records the batches it is given."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, img, c, img_raw=None, all_classes=False):
        self.inputs.append((img, c))
        score = img.mean(dim=(1, 2, 3))[:, None]
        if all_classes:
            return score + 100 * torch.arange(4.0)
        return score + 100 * c[:, None]


def object_ids(batch):  # the object b of views coded as the constant 10 b + v
    return (batch.mean(dim=(1, 2, 3)) // 10).long()


def test_d_sees_views_view_major_and_scores_map_back():
    """D's batch holds B distinct objects in every B consecutive samples (so no
    minibatch-std group of up to B samples holds two views of one object), each view
    with its own object's label, and every score comes back to its [object, view]."""
    B, V = 5, 3
    code = 10 * torch.arange(B, dtype=torch.float32)[:, None] + torch.arange(V, dtype=torch.float32)  # [B, V]
    images = code[:, :, None, None, None].expand(B, V, 3, 4, 4).contiguous()
    c = torch.tensor([3, 1, 0, 2, 1])
    D = RecordingD()
    scores = d_scores_multiview(D, images, c)
    torch.testing.assert_close(scores, code + 100 * c[:, None].float())
    class_scores = d_class_scores_multiview(D, images)
    torch.testing.assert_close(class_scores, code[:, :, None] + 100 * torch.arange(4.0))
    for batch, labels in D.inputs:
        ids = object_ids(batch)
        assert all(len(set(ids[i:i + B].tolist())) == B for i in range(len(ids) - B + 1))
        if labels is not None:
            assert torch.equal(labels, c[ids])


def test_r1_matches_hand_computed_penalty():
    D = LinearD()
    real = torch.randn(6, 3, 8, 8, requires_grad=True)
    c = torch.zeros(6, dtype=torch.long)
    penalty = r1_penalty(D(real, c), real)
    torch.testing.assert_close(penalty, D.a.detach().square().sum())
    # A quadratic D: D(x) = 0.5 ||x||^2 has gradient x, so R1 = mean ||x||^2.
    quad = 0.5 * real.square().sum(dim=(1, 2, 3))[:, None]
    torch.testing.assert_close(r1_penalty(quad, real), real.detach().square().sum(dim=(1, 2, 3)).mean())


def test_r1_of_a_dual_d_sums_both_inputs_gradients():
    D = LinearDualD()
    real = torch.randn(6, 3, 8, 8, requires_grad=True)
    raw = torch.randn(6, 3, 4, 4, requires_grad=True)
    penalty = r1_penalty(D(real, torch.zeros(6, dtype=torch.long), raw), real, raw)
    torch.testing.assert_close(penalty, D.a.detach().square().sum() + D.b.detach().square().sum())


def test_real_raw_images_resize_down_then_blur():
    g = torch.Generator().manual_seed(6)
    real = torch.rand(2, 3, 16, 16, generator=g)
    # Antialiased 2x bilinear down-sampling of a 16 px image is the mean of 4x4 windows
    # with tent weights (1, 3, 3, 1) / 8 per axis.
    tent = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    padded = F.pad(real, (1, 1, 1, 1), mode="replicate")
    windows = padded.unfold(2, 4, 2).unfold(3, 4, 2)  # [2, 3, 8, 8, 4, 4]
    expected = (windows * torch.outer(tent, tent)).sum(dim=(-1, -2))
    torch.testing.assert_close(real_raw_images(real, 8, 0.0)[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])
    torch.testing.assert_close(real_raw_images(real, 8, 1.0), blur_images(real_raw_images(real, 8, 0.0), 1.0))


def test_blur_keeps_constants_and_mass_and_fades():
    const = torch.full((2, 3, 16, 16), 0.7)
    torch.testing.assert_close(blur_images(const, 2.0)[..., 6:-6, 6:-6], const[..., 6:-6, 6:-6])
    spike = torch.zeros(1, 1, 21, 21)
    spike[0, 0, 10, 10] = 1
    out = blur_images(spike, 1.5)
    assert abs(out.sum().item() - 1) < 1e-6 and out[0, 0, 10, 10] < 0.5
    assert blur_sigma(0, 10, 200) == 10 and blur_sigma(100, 10, 200) == 5 and blur_sigma(300, 10, 200) == 0
