"""Class-conditional mapping network z + class -> w, with truncation."""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tri3d.models.layers import FullyConnected, normalize_2nd_moment

CLASS_MEAN_SAMPLES = 1024  # latents averaged for a class's mean w (the centre of class-conditional truncation)
CLASS_MEAN_SEED = 0  # the seed those latents are drawn from (the same latents for every class)


@lru_cache(maxsize=4)
def _mean_latents(samples: int, seed: int, z_dim: int, device: torch.device,
                  dtype: torch.dtype) -> Tensor:  # [samples, z_dim], never modified by its users
    """The latents a mean ``w`` averages: drawn on the CPU from ``seed`` (the same on every
    device), kept per device so repeated truncation does not draw and copy them again."""
    return torch.randn(samples, z_dim, generator=torch.Generator().manual_seed(seed)).to(device, dtype)


class MappingNetwork(nn.Module):
    """Maps a latent ``z`` and a class label to ``w``, broadcast to ``num_ws`` layers.

    The label is one-hot embedded by a linear layer; both ``z`` and the embedding are
    normalized to unit second moment and concatenated. ``w_avg`` tracks the running mean
    of ``w`` in training.

    Truncation (``truncation_psi < 1``) moves ``w`` toward a centre: with classes, the mean
    ``w`` of its own class (``mean_w``, from ``CLASS_MEAN_SAMPLES`` latents of a fixed seed:
    StyleGAN-XL's class-conditional truncation, since the mean over all classes is an
    object of no class); without, the tracked ``w_avg`` (StyleGAN2's).

    Args:
        z_dim: latent size.
        num_classes: number of classes (0: unconditional).
        w_dim: intermediate latent size.
        num_ws: how many copies of ``w`` the synthesis network consumes.
        num_layers: MLP depth (EG3D/paper: 2).
        lr_multiplier: learning-rate multiplier of the MLP (StyleGAN: 0.01).
        w_avg_beta: decay of the running mean of ``w``.
    """

    def __init__(self, z_dim: int, num_classes: int, w_dim: int, num_ws: int, num_layers: int = 2,
                 lr_multiplier: float = 0.01, w_avg_beta: float = 0.998):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.z_dim, self.num_classes, self.w_dim, self.num_ws = z_dim, num_classes, w_dim, num_ws
        self.embed = FullyConnected(num_classes, w_dim, activation=False) if num_classes > 0 else None
        widths = [z_dim + (w_dim if num_classes > 0 else 0)] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            FullyConnected(a, b, lr_multiplier=lr_multiplier) for a, b in zip(widths[:-1], widths[1:])
        )
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, c: Tensor | None, *, truncation_psi: float = 1.0,
                update_w_avg: bool = False) -> Tensor:  # [N, z_dim], [N] -> [N, num_ws, w_dim]
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        if self.embed is not None:
            if c is None or c.dim() != 1 or c.shape[0] != z.shape[0]:
                raise ValueError(f"c must be class labels of shape [{z.shape[0]}], got {None if c is None else list(c.shape)}")
            if c.numel() and (int(c.min()) < 0 or int(c.max()) >= self.num_classes):
                raise ValueError(f"c must hold class labels in [0, {self.num_classes}), got {c.tolist()}")
        x = self._map(z, c)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1:
            x = self._truncation_centres(c, x).lerp(x, truncation_psi)
        return x.unsqueeze(1).expand(-1, self.num_ws, -1)

    def mean_w(self, c: int | None, samples: int = CLASS_MEAN_SAMPLES,
               seed: int = CLASS_MEAN_SEED) -> Tensor:  # -> [w_dim]
        """Mean ``w`` of class ``c`` (``None`` without classes) over ``samples`` latents drawn
        from ``seed`` on the CPU (so every device and every class averages the same latents)."""
        if (c is None) != (self.embed is None) or (c is not None and not 0 <= c < self.num_classes):
            wanted = f"a class label in [0, {self.num_classes})" if self.embed is not None else "None"
            raise ValueError(f"c must be {wanted} for this mapping, got {c!r}")
        classes = None if c is None else torch.tensor([c], device=self.w_avg.device)
        return self._mean_ws(classes, samples, seed)[0]

    def _map(self, z: Tensor, c: Tensor | None) -> Tensor:  # [N, z_dim], [N] -> [N, w_dim]
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            onehot = F.one_hot(c.long(), self.num_classes).to(z.dtype)
            x = torch.cat([x, normalize_2nd_moment(self.embed(onehot))], dim=1)
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def _mean_ws(self, classes: Tensor | None,  # [K] distinct labels, or None without classes (K = 1)
                 samples: int, seed: int) -> Tensor:  # -> [K, w_dim]
        """Each class's mean ``w`` over the same latents, all classes in one mapping pass."""
        z = _mean_latents(samples, seed, self.z_dim, self.w_avg.device, self.w_avg.dtype)
        if classes is None:
            return self._map(z, None).mean(dim=0, keepdim=True)
        w = self._map(z.repeat(len(classes), 1), classes.repeat_interleave(samples))
        return w.view(len(classes), samples, self.w_dim).mean(dim=1)

    def _truncation_centres(self, c: Tensor | None, w: Tensor) -> Tensor:  # -> [N, w_dim]
        """Each row's truncation centre: its class's ``mean_w``, or ``w_avg`` without classes."""
        if self.embed is None:
            return self.w_avg.expand_as(w)
        classes, index = torch.unique(c, return_inverse=True)
        return self._mean_ws(classes, CLASS_MEAN_SAMPLES, CLASS_MEAN_SEED).to(w.dtype)[index]
