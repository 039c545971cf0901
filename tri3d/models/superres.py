"""Optional EG3D-style super-resolution: neural-rendered features -> full-resolution RGB."""
from __future__ import annotations

import math

from torch import Tensor, nn

from tri3d.models.synthesis import SynthesisBlock


class SuperResolution(nn.Module):
    """Upsamples a rendered feature image ``[N, C, r, r]`` to ``img_resolution`` RGB with
    style-modulated blocks (2x each). The skip path starts from the raw render (the first
    3 feature channels), FIR-upsampled, so the 3D-consistent image stays the base.
    """

    def __init__(self, in_channels: int, neural_resolution: int, img_resolution: int, w_dim: int,
                 channels: int = 128):
        super().__init__()
        steps = int(math.log2(img_resolution // neural_resolution))
        if steps < 1 or neural_resolution * 2**steps != img_resolution:
            raise ValueError(f"img_resolution must be neural_resolution times a power of two >= 2, got "
                             f"{neural_resolution} -> {img_resolution}")
        blocks, ch = [], in_channels
        for k in range(steps):
            blocks.append(SynthesisBlock(ch, channels, w_dim, neural_resolution * 2 ** (k + 1), 3))
            ch = channels
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_ws for b in self.blocks)
        self.img_resolution = img_resolution

    def forward(self, features: Tensor, ws: Tensor, noise_mode: str = "random") -> Tensor:
        # features: [N, C, r, r]; ws: [N, k, w_dim] (the last synthesis w is reused)
        w = ws[:, -1:].expand(-1, self.num_ws, -1)
        img = features[:, :3]
        x, i = features, 0
        for block in self.blocks:
            x, img = block(x, img, w[:, i : i + block.num_ws], noise_mode)
            i += block.num_ws
        return img
