"""Multi-view batched rendering: V views of a triplane cost V x the per-view ray memory
and never copy the planes (the views are laid along the ray axis of one render)."""
from __future__ import annotations

import torch

from tri3d.models import TriplaneDecoder
from tri3d.render import TriplaneRenderer
from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses
from tri3d.utils.memory import SavedTensorBytes


def saved_bytes(planes, decoder, renderer, cams, K, res) -> int:
    counter = SavedTensorBytes()
    p = planes.detach().requires_grad_()
    with counter.count():
        renderer(p, decoder, cams, K, res)
    return counter.bytes


def test_memory_grows_by_the_per_ray_cost_only():
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 16, 64, 64)  # big planes: a copy per view would show
    decoder = TriplaneDecoder(16, 16, 1, 3)
    renderer = TriplaneRenderer(depth_samples=6, importance_samples=6, deterministic=True)
    K = fov_to_intrinsics(30.0)
    cams = sample_multiview_poses(2, 4, min_angle_deg=0.0, generator=torch.Generator().manual_seed(0))
    batched = [saved_bytes(planes, decoder, renderer, cams[:, :v], K, 8) for v in (1, 2, 3, 4)]
    steps = [b - a for a, b in zip(batched, batched[1:])]
    assert max(steps) - min(steps) <= 0.02 * steps[0]  # linear in V
    # The same views rendered as B*V separate triplanes (planes repeated per view):
    copied = []
    for v in (1, 2):
        rep = planes.repeat_interleave(v, dim=0)
        copied.append(saved_bytes(rep, decoder, renderer, cams[:, :v].reshape(-1, 1, 4, 4), K, 8))
    assert copied[1] - copied[0] >= steps[0] + planes.numel() * 4  # copying adds at least one planes' worth
    assert steps[0] < planes.numel() * 4  # here a view's rays cost less than the planes themselves
