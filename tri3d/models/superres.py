"""EG3D-style super-resolution: neural-rendered features -> full-resolution RGB."""
from __future__ import annotations

import math

from torch import Tensor, nn

from tri3d.models.synthesis import SynthesisBlock, num_ws_of, split_ws


class SuperResolution(nn.Module):
    """Upsamples a rendered feature image ``[N, C, r, r]`` to ``img_resolution`` RGB.

    EG3D's structure: a ``channels``-wide block at the neural resolution without
    up-sampling, then one up-sampling block per factor of two with ``channels // 2``
    (64 -> 128 at EG3D's defaults: 574,954 parameters with ``w_dim=512``, C=32). Every
    layer reads the generator's last ``w``. The skip path starts from the raw render (the
    first 3 feature channels), so the 3D-consistent image stays the base.
    """

    def __init__(self, in_channels: int, neural_resolution: int, img_resolution: int, w_dim: int,
                 channels: int = 128):
        super().__init__()
        steps = int(math.log2(img_resolution // neural_resolution))
        if steps < 1 or neural_resolution * 2**steps != img_resolution:
            raise ValueError(f"img_resolution must be neural_resolution times a power of two >= 2, got "
                             f"{neural_resolution} -> {img_resolution}")
        blocks = [SynthesisBlock(in_channels, channels, w_dim, neural_resolution, 3, up=1)]
        for k in range(steps):
            blocks.append(SynthesisBlock(blocks[-1].conv1.weight.shape[0], channels // 2, w_dim,
                                         neural_resolution * 2 ** (k + 1), 3))
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = num_ws_of(self.blocks)
        self.img_resolution = img_resolution

    def forward(self, features: Tensor,  # [N, C, r, r]
                ws: Tensor,  # [N, k, w_dim]: the last synthesis w is used for every layer
                noise_mode: str = "random") -> Tensor:  # [N, 3, R, R]
        w = ws[:, -1:].expand(-1, self.num_ws, -1)
        img = features[:, :3]
        x = features
        for block, block_ws in zip(self.blocks, split_ws(self.blocks, w)):
            x, img = block(x, img, block_ws, noise_mode)
        return img
