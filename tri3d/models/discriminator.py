"""StyleGAN2 residual discriminator, class-conditional by projection, with no pose input."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tri3d.models.layers import Conv2dLayer, FullyConnected, normalize_2nd_moment
from tri3d.utils.typed_config import from_typed_dict


@dataclass
class DiscriminatorConfig:
    image_resolution: int = 64  # side of the images D scores
    num_classes: int = 0  # class-conditional by projection when > 0
    channel_base: int = 32768  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    cmap_dim: int | None = None  # class-embedding width; None: the last block's channels (StyleGAN2)
    mbstd_group: int = 4  # minibatch-stddev group size
    mapping_layers: int = 8  # depth of the label mapping network (StyleGAN2: 8)
    mapping_lr_multiplier: float = 0.01  # its learning-rate multiplier (StyleGAN2: 0.01)
    dual: bool = False  # EG3D's dual discrimination: image + raw neural rendering (6 channels)
    mixed_resolutions: int = 4  # with ``mixed_dtype`` set, this many highest-resolution blocks run in it (EG3D's fp16 layers)
    center_input: bool = False  # True: the convolutions see each image minus its mean colour, which joins their features at the first FC layer
    down_filter: str = "fir"  # each block's 2x downsampling: "fir" (StyleGAN2's [1,3,3,1] blur), "box" (2x2 mean) or "none" (plain stride 2)

    @classmethod
    def from_dict(cls, d: dict, where: str = "discriminator config") -> "DiscriminatorConfig":
        """Built from JSON values, each checked against its field's type (``ValueError`` naming the key)."""
        return from_typed_dict(cls, d, where)

    def to_dict(self) -> dict:
        return asdict(self)


DOWN_FILTERS = {"fir": (1, 3, 3, 1), "box": (1, 1), "none": (1,)}  # DiscriminatorConfig.down_filter -> 1D taps


class DiscriminatorBlock(nn.Module):
    """conv 3x3 -> conv 3x3 down 2x, plus a 1x1 down skip; both branches scaled by sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int, *, from_rgb: bool, img_channels: int = 3,
                 down_taps: tuple[float, ...] = DOWN_FILTERS["fir"]):
        super().__init__()
        self.fromrgb = Conv2dLayer(img_channels, in_channels, 1) if from_rgb else None
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3)
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, down=2, gain=math.sqrt(0.5), down_taps=down_taps)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, down=2, bias=False, activation=False,
                                gain=math.sqrt(0.5), down_taps=down_taps)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(img)
        y = self.skip(x)
        return y + self.conv1(self.conv0(x))


def resize_images(img: Tensor, size: int) -> Tensor:  # [N, C, H, W] -> [N, C, size, size]
    """EG3D's filtered resizing: antialiased bilinear (plain bilinear when up-sampling)."""
    if img.shape[-1] == size and img.shape[-2] == size:
        return img
    return F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def minibatch_stddev(x: Tensor, group_size: int) -> Tensor:  # [N, C, H, W] -> [N, C + 1, H, W]
    """Append the mean over channels and pixels of the per-group feature standard deviation.

    Groups are consecutive samples (StyleGAN strides them), so a group never spans two
    ranks' slices of a batch and multi-process training matches single-process training.
    """
    N, C, H, W = x.shape
    G = max(1, min(group_size, N))
    while N % G:
        G -= 1
    y = x.reshape(N // G, G, C, H, W)
    y = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1)
    y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [N/G]
    y = y.repeat_interleave(G).reshape(N, 1, 1, 1).expand(N, 1, H, W)
    return torch.cat([x, y], dim=1)


class LabelMapping(nn.Module):
    """StyleGAN2's label mapping of D: one-hot label -> linear embedding -> second-moment
    normalization -> ``num_layers`` leaky-ReLU layers (learning-rate multiplier ``lr_mul``)."""

    def __init__(self, num_classes: int, dim: int, num_layers: int, lr_multiplier: float):
        super().__init__()
        self.num_classes = num_classes
        self.embed = FullyConnected(num_classes, dim, activation=False)
        self.layers = nn.Sequential(*(FullyConnected(dim, dim, lr_multiplier=lr_multiplier)
                                      for _ in range(num_layers)))

    def forward(self, c: Tensor) -> Tensor:  # [N] labels -> [N, dim]
        onehot = F.one_hot(c.long(), self.num_classes).to(self.embed.linear.weight.dtype)
        return self.layers(normalize_2nd_moment(self.embed(onehot)))


class Discriminator(nn.Module):
    """Scores images ``[N, 3, R, R]`` (with class labels ``[N]``). It sees no camera pose.

    With ``dual``, it also takes the raw neural rendering ``[N, 3, r, r]``, resizes it to
    ``R`` and scores the 6-channel concatenation (EG3D's dual discriminator).
    Output: ``[N, 1]``; with classes, the projection ``<phi(x), cmap(c)> / sqrt(cmap_dim)``.
    """

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        R = config.image_resolution
        log2 = int(math.log2(R))
        if R < 8 or 2**log2 != R:
            raise ValueError(f"image_resolution must be a power of two >= 8, got {R}")
        if config.down_filter not in DOWN_FILTERS:
            raise ValueError(f"down_filter must be one of {sorted(DOWN_FILTERS)}, got {config.down_filter!r}")

        def channels(res: int) -> int:
            return min(config.channel_base // res, config.channel_max)

        self.img_channels = 6 if config.dual else 3
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(channels(res), channels(res // 2), from_rgb=res == R, img_channels=self.img_channels,
                               down_taps=DOWN_FILTERS[config.down_filter])
            for res in (2**i for i in range(log2, 2, -1))
        )
        c4 = channels(4)
        self.cmap_dim = config.cmap_dim if config.cmap_dim is not None else c4
        out_dim = self.cmap_dim if config.num_classes > 0 else 1
        self.mbstd_group = config.mbstd_group
        self.mixed_dtype: torch.dtype | None = None  # e.g. torch.bfloat16: high-resolution blocks under autocast
        self.center_fraction = 1.0  # with center_input: the share of each image's mean colour removed before the convolutions (training ramps it in)
        self.conv = Conv2dLayer(c4 + 1, c4, 3)
        self.fc = FullyConnected(c4 * 16 + (self.img_channels if config.center_input else 0), c4)
        self.out = FullyConnected(c4, out_dim, activation=False)
        self.cmap = (LabelMapping(config.num_classes, self.cmap_dim, config.mapping_layers,
                                  config.mapping_lr_multiplier) if config.num_classes > 0 else None)

    def forward(self, img: Tensor,  # [N, 3, R, R]
                c: Tensor | None = None,  # [N] class labels
                img_raw: Tensor | None = None,  # [N, 3, r, r] raw neural rendering (dual only)
                *,
                all_classes: bool = False,
                ) -> Tensor:  # [N, 1]; [N, num_classes] with all_classes
        """The score of each image under its label ``c``; with ``all_classes`` (and no
        ``c``) its score under every label at once: column ``k`` is ``forward(img, k)``,
        from one pass over the image (a class-loss reads it as logits)."""
        x = self.features(img, img_raw)
        if self.cmap is None:
            if all_classes:
                raise ValueError("all_classes needs a class-conditional discriminator (num_classes > 0)")
            return x
        if all_classes:
            if c is not None:
                raise ValueError("give either c or all_classes=True")
            labels = torch.arange(self.config.num_classes, device=img.device)
            return x @ self.cmap(labels).T / math.sqrt(self.cmap_dim)
        if c is None or c.shape != (img.shape[0],):
            raise ValueError(f"c must be class labels of shape [{img.shape[0]}]")
        return (x * self.cmap(c)).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)

    def features(self, img: Tensor,  # [N, 3, R, R]
                 img_raw: Tensor | None = None,  # [N, 3, r, r] raw neural rendering (dual only)
                 ) -> Tensor:  # [N, cmap_dim] (class-conditional) or [N, 1]
        """The output of the last layer, before the class projection."""
        R = self.config.image_resolution
        if img.dim() != 4 or img.shape[1:] != (3, R, R):
            raise ValueError(f"img must have shape [N, 3, {R}, {R}], got {list(img.shape)}")
        if self.config.dual:
            if img_raw is None or img_raw.dim() != 4 or img_raw.shape[:2] != img.shape[:2]:
                raise ValueError(f"the dual discriminator needs img_raw of shape [{img.shape[0]}, 3, r, r], got "
                                 f"{None if img_raw is None else list(img_raw.shape)}")
            img = torch.cat([img, resize_images(img_raw, R)], dim=1)
        elif img_raw is not None:
            raise ValueError("img_raw is only read by a dual discriminator (DiscriminatorConfig.dual)")
        mean_colour = img.mean(dim=(2, 3)) if self.config.center_input else None  # [N, C]
        if mean_colour is not None:
            img = img - self.center_fraction * mean_colour[:, :, None, None]
        x = None
        dtype = self.mixed_dtype
        for k, block in enumerate(self.blocks):
            mixed = dtype is not None and k < self.config.mixed_resolutions
            with torch.autocast(img.device.type, dtype=dtype or torch.bfloat16, enabled=mixed):
                x = block(x, img)
            x = x.to(img.dtype)  # back from the mixed dtype (fp32 stays fp32, fp64 stays fp64)
        x = self.conv(minibatch_stddev(x, self.mbstd_group)).flatten(1)
        if mean_colour is not None:
            x = torch.cat([x, mean_colour], dim=1)
        return self.out(self.fc(x))
