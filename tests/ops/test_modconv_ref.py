"""Modulated convolution, FIR resampling and bias_act against independent computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tri3d.ops import modulated_conv2d, modulated_conv2d_ref
from tri3d.ops.bias_act import bias_lrelu_ref
from tri3d.ops.upfirdn import setup_filter, upfirdn2d_ref, upsample2d


def grouped_modconv(x, weight, styles, demodulate=True):
    """StyleGAN2's grouped formulation: per-sample weights, one grouped conv."""
    N, I, H, W = x.shape
    O, _, k, _ = weight.shape
    w = weight[None] * styles[:, None, :, None, None]  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    out = F.conv2d(x.reshape(1, N * I, H, W), w.reshape(N * O, I, k, k), padding=k // 2, groups=N)
    return out.reshape(N, O, H, W)


@pytest.mark.parametrize("k, demod", [(3, True), (1, False), (3, False)])
def test_matches_grouped_formulation(k, demod):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(3, 5, 7, 9, generator=g, dtype=torch.float64)
    w = torch.randn(4, 5, k, k, generator=g, dtype=torch.float64)
    s = torch.randn(3, 5, generator=g, dtype=torch.float64) + 1
    torch.testing.assert_close(modulated_conv2d(x, w, s, demodulate=demod), grouped_modconv(x, w, s, demod))


def transposed_modconv_then_fir(x, weight, styles, demodulate=True):
    """StyleGAN2's up=2 layer, formulated independently: per-sample (demodulated)
    weights, a stride-2 transposed convolution, then the [1, 3, 3, 1] FIR filter
    (gain 4, one pixel of padding per side) written as a plain depthwise convolution."""
    N, I, H, W = x.shape
    O, _, k, _ = weight.shape
    w = weight[None] * styles[:, None, :, None, None]  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    w = w.transpose(1, 2).reshape(N * I, O, k, k)  # conv_transpose2d's [in, out / groups, k, k]
    y = F.conv_transpose2d(x.reshape(1, N * I, H, W), w, stride=2, groups=N)  # [1, N*O, 2H+1, 2W+1]
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype)
    fir = (torch.outer(taps, taps) / 64 * 4)[None, None].repeat(N * O, 1, 1, 1)
    y = F.conv2d(F.pad(y, (1, 1, 1, 1)), fir, groups=N * O)
    return y.reshape(N, O, 2 * H, 2 * W)


@pytest.mark.parametrize("demod", [True, False])
def test_up2_is_stylegan2_transposed_conv_then_fir_including_borders(demod):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    s = (torch.rand(2, 3, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    up = modulated_conv2d_ref(x, w, s, up=2, demodulate=demod)
    assert up.shape == (2, 2, 8, 10)
    torch.testing.assert_close(up, transposed_modconv_then_fir(x, w, s, demod), rtol=1e-12, atol=1e-12)
    # Upsampling first and zero-padding again for the (flipped) 3x3 conv agrees inside and
    # differs on the one-pixel border.
    twice_padded = grouped_modconv(upsample2d(x, setup_filter([1, 3, 3, 1]).double()), w.flip([2, 3]), s, demod)
    assert (up - twice_padded)[..., 1:-1, 1:-1].abs().max() < 1e-12
    assert (up - twice_padded).abs().max() > 1e-3
    assert torch.autograd.gradcheck(lambda a, b, c: modulated_conv2d_ref(a, b, c, up=2, demodulate=demod), (x, w, s))


def naive_upfirdn(x, f, up, down, pad):
    """Direct loop: zero-insert, pad, true convolution with f, subsample."""
    x, f = x.numpy(), f.numpy()
    N, C, H, W = x.shape
    u = np.zeros((N, C, H * up, W * up))
    u[:, :, ::up, ::up] = x
    x0, x1, y0, y1 = pad
    u = np.pad(u, ((0, 0), (0, 0), (y0, y1), (x0, x1)))
    k = f.shape[0]
    oh, ow = u.shape[2] - k + 1, u.shape[3] - k + 1
    out = np.zeros((N, C, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for a in range(k):
                for b in range(k):
                    out[:, :, i, j] += u[:, :, i + a, j + b] * f[k - 1 - a, k - 1 - b]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("up, down, pad", [(2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (1, 1, (1, 2, 0, 3))])
def test_upfirdn_matches_naive_loop(up, down, pad):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 5, 6, generator=g, dtype=torch.float64)
    f = torch.rand(4, 4, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(upfirdn2d_ref(x, f, up=up, down=down, padding=pad).numpy(),
                               naive_upfirdn(x, f, up, down, pad), rtol=1e-10, atol=1e-12)


def test_upsample_keeps_constant_interior():
    x = torch.full((1, 1, 6, 6), 3.0)
    y = upsample2d(x, setup_filter([1, 3, 3, 1]))
    assert y.shape == (1, 1, 12, 12)
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.full((1, 1, 8, 8), 3.0))


def test_bias_lrelu_closed_form():
    x = torch.tensor([[-2.0, -0.5, 0.5, 3.0]]).reshape(1, 4, 1, 1)
    b = torch.tensor([1.0, 0.0, 0.0, -1.0])
    y = bias_lrelu_ref(x, b, clamp=2.0).flatten()
    expected = torch.tensor([-0.2, -0.1, 0.5, 2.0]) * math.sqrt(2)
    expected[-1] = 2.0  # clamped
    torch.testing.assert_close(y, expected)


def test_bad_arguments_name_them():
    x, w, s = torch.randn(2, 3, 4, 4), torch.randn(5, 3, 3, 3), torch.randn(2, 3)
    with pytest.raises(ValueError, match="styles"):
        modulated_conv2d(x, w, s[:, :2])
    with pytest.raises(ValueError, match="up must be 1 or 2"):
        modulated_conv2d(x, w, s, up=4)
    with pytest.raises(ValueError, match="sizes of x, styles"):
        modulated_conv2d(x, w, s[:1])
