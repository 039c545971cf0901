"""The triplane decoder MLP (EG3D's OSGDecoder; the paper's deeper "+d" variant)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RGB_PAD = 1e-3


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate (StyleGAN).

    The stored weight is ``N(0, 1) / lr_multiplier``; at run time it is scaled by
    ``lr_multiplier / sqrt(in_features)`` and the bias by ``lr_multiplier``, so Adam's
    per-parameter step acts at the same rate on every layer.
    """

    def __init__(self, in_features: int, out_features: int, lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, {out_features}")
        if lr_multiplier <= 0:
            raise ValueError(f"lr_multiplier must be > 0, got {lr_multiplier}")
        self.in_features = in_features
        self.out_features = out_features
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)) / lr_multiplier)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)

    def effective(self) -> tuple[Tensor, Tensor]:
        """The weight ``[out, in]`` and bias ``[out]`` actually applied (differentiable)."""
        return self.weight * self.weight_gain, self.bias * self.lr_multiplier

    def forward(self, x: Tensor) -> Tensor:  # x: [..., in] -> [..., out]
        weight, bias = self.effective()
        return F.linear(x, weight.to(x.dtype), bias.to(x.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, lr_multiplier={self.lr_multiplier}"


class TriplaneDecoder(nn.Module):
    """Decodes averaged triplane features into density and colour.

    FC(in -> hidden) softplus, ``n_hidden - 1`` more FC(hidden -> hidden) softplus, then
    FC(hidden -> 1 + out). ``n_hidden=1`` is EG3D's decoder, ``n_hidden=3`` the paper's
    deeper "+d" decoder.

    Args:
        in_features: triplane channels C.
        hidden: width of the hidden layers.
        n_hidden: number of hidden (softplus) layers, >= 1.
        out_features: colour/feature channels returned besides density.
        lr_multiplier: equalized learning-rate multiplier of every layer.
    """

    def __init__(
        self,
        in_features: int = 32,
        hidden: int = 64,
        n_hidden: int = 1,
        out_features: int = 32,
        lr_multiplier: float = 1.0,
    ):
        super().__init__()
        if n_hidden < 1:
            raise ValueError(f"n_hidden must be >= 1, got {n_hidden}")
        widths = [in_features] + [hidden] * n_hidden + [1 + out_features]
        self.layers = nn.ModuleList(
            EqualizedLinear(a, b, lr_multiplier=lr_multiplier) for a, b in zip(widths[:-1], widths[1:])
        )
        self.in_features = in_features
        self.hidden = hidden
        self.n_hidden = n_hidden
        self.out_features = out_features

    def effective_layers(self) -> list[tuple[Tensor, Tensor]]:
        """Per layer, the effective ``(weight [out, in], bias [out])`` (read by fused ops)."""
        return [layer.effective() for layer in self.layers]

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Decode features.

        Args:
            features: averaged triplane features, ``[..., in_features]``.

        Returns:
            ``(sigma_raw [..., 1], rgb [..., out_features])``; rgb is
            ``sigmoid(x) * (1 + 2e-3) - 1e-3``.
        """
        x = features
        for layer in self.layers[:-1]:
            x = F.softplus(layer(x))
        x = self.layers[-1](x)
        return x[..., :1], decoder_rgb_activation(x[..., 1:])


def decoder_rgb_activation(x: Tensor) -> Tensor:
    """EG3D's colour activation: ``sigmoid(x) * (1 + 2e-3) - 1e-3``."""
    return torch.sigmoid(x) * (1 + 2 * RGB_PAD) - RGB_PAD
