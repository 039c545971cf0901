"""StyleGAN2 synthesis network producing the triplane, with the paper's "+g" extra blocks."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tri3d.models.layers import NOISE_MODES, SynthesisLayer, ToRGBLayer
from tri3d.ops.upfirdn import setup_filter, upsample2d


class SynthesisBlock(nn.Module):
    """Two modulated convs (the first upsamples 2x unless ``up=1``) + skip-connected ToRGB.

    The first block of the network starts from a learned 4x4 constant and has one conv.
    Reads ``num_conv + num_torgb`` consecutive ``w``s; as in StyleGAN2, the ToRGB's ``w``
    is the one the next block's first convolution reads (blocks advance by ``num_conv``).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int, *,
                 first: bool = False, up: int = 2, conv_clamp: float | None = 256.0):
        super().__init__()
        self.first, self.up, self.resolution = first, (1 if first else up), resolution
        if first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=self.up, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]), persistent=False)
        self.num_conv, self.num_torgb = (1 if first else 2), 1

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor,  # ws: [N, num_conv + num_torgb, w_dim]
                noise_mode: str) -> tuple[Tensor, Tensor]:
        w = iter(ws.unbind(dim=1))
        if self.first:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, next(w), noise_mode)
        x = self.conv1(x, next(w), noise_mode)
        y = self.torgb(x, next(w))
        if img is not None and self.up == 2:
            img = upsample2d(img, self.resample_filter)
        img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """Blocks from 4x4 to ``img_resolution``; with ``extra_blocks`` a non-upsampling block
    follows every block (the paper's deeper "+g" generator).

    Channels at resolution r: ``min(channel_base // r, channel_max)``. ``num_ws`` is the
    number of convolutions + 1 (StyleGAN2's indexing: 14 for a 256x256 network).
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, *, channel_base: int = 32768,
                 channel_max: int = 512, extra_blocks: bool = False, conv_clamp: float | None = 256.0):
        super().__init__()
        log2 = int(math.log2(img_resolution))
        if img_resolution < 4 or 2**log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        self.img_resolution, self.img_channels, self.extra_blocks = img_resolution, img_channels, extra_blocks

        def channels(res: int) -> int:
            return min(channel_base // res, channel_max)

        blocks = []
        for res in (2**i for i in range(2, log2 + 1)):
            in_ch = channels(res // 2) if res > 4 else 0
            blocks.append(SynthesisBlock(in_ch, channels(res), w_dim, res, img_channels, first=res == 4,
                                         conv_clamp=conv_clamp))
            if extra_blocks:
                blocks.append(SynthesisBlock(channels(res), channels(res), w_dim, res, img_channels, up=1,
                                             conv_clamp=conv_clamp))
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = num_ws_of(self.blocks)

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:  # [N, num_ws, w_dim] -> [N, C, R, R]
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, w_dim], got {list(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = img = None
        for block, block_ws in zip(self.blocks, split_ws(self.blocks, ws)):
            x, img = block(x, img, block_ws, noise_mode)
        return img


def num_ws_of(blocks: nn.ModuleList) -> int:
    """``w``s read by a chain of blocks: one per convolution plus the last block's ToRGB."""
    return sum(b.num_conv for b in blocks) + blocks[-1].num_torgb


def split_ws(blocks: nn.ModuleList, ws: Tensor) -> list[Tensor]:  # ws: [N, num_ws, w_dim]
    """Each block's ``[N, num_conv + num_torgb, w_dim]`` window, advancing by ``num_conv``."""
    out, i = [], 0
    for block in blocks:
        out.append(ws.narrow(1, i, block.num_conv + block.num_torgb))
        i += block.num_conv
    return out
