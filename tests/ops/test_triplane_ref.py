"""sample_triplane_ref / triplane_decode against independent computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tri3d.models import TriplaneDecoder
from tri3d.ops import sample_triplane, sample_triplane_ref, triplane_decode, triplane_decode_ref

AXES = {"xyz": [(0, 1), (0, 2), (1, 2)], "eg3d": [(0, 1), (0, 2), (2, 0)]}


def bilinear_zeros(plane: np.ndarray, u: float, v: float) -> np.ndarray:
    """One texel read of a [C, H, W] plane at normalized (u, v), align_corners=False, zero padding."""
    C, H, W = plane.shape
    x = ((u + 1) * W - 1) / 2
    y = ((v + 1) * H - 1) / 2
    x0, y0 = math.floor(x), math.floor(y)
    out = np.zeros(C)
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wgt = (1 - abs(x - xi)) * (1 - abs(y - yi))
            if 0 <= xi < W and 0 <= yi < H:
                out += wgt * plane[:, yi, xi]
    return out


def per_point_reference(planes: torch.Tensor, xyz: torch.Tensor, box_warp: float, plane_axes: str) -> np.ndarray:
    P, X = planes.double().numpy(), xyz.double().numpy()
    B, N = X.shape[:2]
    out = np.zeros((B, N, P.shape[2]))
    for b in range(B):
        for n in range(N):
            c = X[b, n] * 2 / box_warp
            out[b, n] = np.mean([bilinear_zeros(P[b, k], c[i], c[j]) for k, (i, j) in enumerate(AXES[plane_axes])], 0)
    return out


@pytest.mark.parametrize("plane_axes", ["xyz", "eg3d"])
@pytest.mark.parametrize("box_warp", [1.0, 2.4])
def test_sample_matches_per_point_bilinear(plane_axes, box_warp):
    g = torch.Generator().manual_seed(1)
    planes = torch.randn(2, 3, 5, 7, 9, generator=g)
    # Mostly inside the box, some outside (those read zeros or partial borders).
    xyz = (torch.rand(2, 37, 3, generator=g) - 0.5) * box_warp * 1.3
    got = sample_triplane_ref(planes, xyz, box_warp=box_warp, plane_axes=plane_axes)
    want = per_point_reference(planes, xyz, box_warp, plane_axes)
    np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-5, atol=1e-5)


def test_points_far_outside_read_zero_and_orders_differ():
    g = torch.Generator().manual_seed(2)
    planes = torch.randn(1, 3, 4, 6, 6, generator=g)
    outside = torch.tensor([[[0.9, 0.9, 0.9], [-2.0, 3.0, -1.0]]])
    assert sample_triplane_ref(planes, outside).abs().max() == 0
    xyz = torch.rand(1, 20, 3, generator=g) - 0.5
    a = sample_triplane_ref(planes, xyz, plane_axes="xyz")
    b = sample_triplane_ref(planes, xyz, plane_axes="eg3d")
    assert (a - b).abs().max() > 1e-3  # the third plane is read transposed


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    planes = torch.randn(1, 3, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    xyz = ((torch.rand(1, 6, 3, generator=g, dtype=torch.float64) - 0.5) * 0.9).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, x: sample_triplane_ref(p, x), (planes, xyz))


def test_decode_is_decoder_of_samples():
    g = torch.Generator().manual_seed(4)
    planes = torch.randn(2, 3, 8, 6, 6, generator=g)
    xyz = torch.rand(2, 11, 3, generator=g) - 0.5
    dec = TriplaneDecoder(in_features=8, hidden=16, n_hidden=3, out_features=3)
    sigma, rgb = triplane_decode(planes, xyz, dec)
    feats = sample_triplane(planes, xyz)
    # Hand-written MLP over the effective weights.
    x = feats
    for k, (w, b) in enumerate(dec.effective_layers()):
        x = x @ w.T + b
        if k < len(dec.layers) - 1:
            x = torch.log1p(torch.exp(x))
    torch.testing.assert_close(sigma, x[..., :1])
    torch.testing.assert_close(rgb, torch.sigmoid(x[..., 1:]) * 1.002 - 0.001)
    s2, r2 = triplane_decode_ref(planes, xyz, dec)
    torch.testing.assert_close((s2, r2), (sigma, rgb))


@pytest.mark.parametrize(
    "planes_shape, xyz_shape, match",
    [
        ((2, 3, 4, 5, 5), (2, 7), "xyz"),
        ((2, 2, 4, 5, 5), (2, 7, 3), "planes"),
        ((2, 3, 4, 5, 5), (3, 7, 3), "planes, xyz"),
        ((2, 3, 4, 5, 5), (2, 7, 2), "xyz"),
    ],
)
def test_bad_shapes_name_the_argument(planes_shape, xyz_shape, match):
    with pytest.raises(ValueError, match=match):
        sample_triplane(torch.randn(planes_shape), torch.randn(xyz_shape))


def test_bad_values_name_the_argument():
    planes = torch.randn(1, 3, 2, 4, 4)
    xyz = torch.zeros(1, 3, 3)
    xyz[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="xyz must be finite"):
        sample_triplane(planes, xyz)
    with pytest.raises(ValueError, match="xyz must have dtype"):
        sample_triplane(planes, torch.zeros(1, 3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="plane_axes"):
        sample_triplane(planes, torch.zeros(1, 3, 3), plane_axes="zyx")
    with pytest.raises(ValueError, match="box_warp"):
        sample_triplane(planes, torch.zeros(1, 3, 3), box_warp=0.0)


def test_plane_index_reads_the_named_triplane():
    g = torch.Generator().manual_seed(5)
    planes = torch.randn(3, 3, 4, 6, 6, generator=g)
    xyz = torch.rand(2, 9, 3, generator=g) - 0.5
    index = torch.tensor([[2] * 9, [0] * 4 + [1] * 5])
    got = sample_triplane(planes, xyz, plane_index=index)
    torch.testing.assert_close(got[0], sample_triplane(planes[2:3], xyz[:1])[0])
    torch.testing.assert_close(got[1, :4], sample_triplane(planes[0:1], xyz[1:, :4])[0])
    torch.testing.assert_close(got[1, 4:], sample_triplane(planes[1:2], xyz[1:, 4:])[0])
    with pytest.raises(ValueError, match="plane_index must lie"):
        sample_triplane(planes, xyz, plane_index=torch.full((2, 9), 3))
    with pytest.raises(ValueError, match="plane_index must have shape"):
        sample_triplane(planes, xyz, plane_index=torch.zeros(2, 8, dtype=torch.long))
