"""StyleGAN2 building blocks with equalized learning rate (reimplemented from the papers)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tri3d.models.decoder import EqualizedLinear
from tri3d.ops._layout import conv_input
from tri3d.ops.bias_act import bias_lrelu
from tri3d.ops.modconv import modulated_conv2d
from tri3d.ops.upfirdn import downsample2d, setup_filter, upfirdn2d_ref

NOISE_MODES = ("random", "const", "none")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + per-pixel noise + bias + leaky ReLU + clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: int = 1,
                 kernel_size: int = 3, conv_clamp: float | None = 256.0):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.resolution, self.conv_clamp = up, resolution, conv_clamp

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random") -> Tensor:  # [N, I, h, w], [N, w_dim]
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device)
        elif noise_mode == "const":
            noise = self.noise_const[None, None]
        return modulated_conv2d(
            x, self.weight, styles, demodulate=True, up=self.up, bias=self.bias, noise=noise,
            noise_strength=self.noise_strength if noise is not None else None, activation="lrelu",
            clamp=self.conv_clamp,
        )


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation, linear output (the skip branch)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = 256.0):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)
        self.conv_clamp = conv_clamp

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        return modulated_conv2d(x, self.weight, styles, demodulate=False, bias=self.bias, activation="linear",
                                clamp=self.conv_clamp)


class Conv2dLayer(nn.Module):
    """Equalized-LR conv with optional FIR-blurred 2x downsampling (discriminator)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, down: int = 1, bias: bool = True,
                 activation: bool = True, gain: float = 1.0, conv_clamp: float | None = 256.0,
                 down_taps: tuple[float, ...] = (1, 3, 3, 1)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        # separable FIR taps of the 2x downsampling (normalized to sum 1); (1,) is a plain stride
        self.register_buffer("resample_filter", setup_filter(list(down_taps)), persistent=False)
        self.down, self.activation, self.gain, self.conv_clamp = down, activation, gain, conv_clamp
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down == 2 and self.kernel_size == 1:
            x = F.conv2d(conv_input(downsample2d(x, self.resample_filter)), w)
        elif self.down == 2:
            p = (self.resample_filter.shape[0] - 2 + self.kernel_size - 1 + 1) // 2
            x = upfirdn2d_ref(x, self.resample_filter, padding=(p, p, p, p))  # blur
            x = F.conv2d(conv_input(x), w, stride=2)
        else:
            x = F.conv2d(conv_input(x), w, padding=self.kernel_size // 2)
        act_gain = self.gain * (math.sqrt(2) if self.activation else 1.0)
        clamp = None if self.conv_clamp is None else self.conv_clamp * self.gain
        return bias_lrelu(x, self.bias, gain=act_gain, clamp=clamp, linear=not self.activation)


class FullyConnected(nn.Module):
    """Equalized-LR linear layer with optional leaky ReLU (gain sqrt 2)."""

    def __init__(self, in_features: int, out_features: int, *, activation: bool = True, lr_multiplier: float = 1.0,
                 bias_init: float = 0.0):
        super().__init__()
        self.linear = EqualizedLinear(in_features, out_features, lr_multiplier=lr_multiplier, bias_init=bias_init)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = self.linear(x)
        return bias_lrelu(x) if self.activation else x


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:  # [N, D]
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()
