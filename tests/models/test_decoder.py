"""TriplaneDecoder: layer layout, equalized learning rate."""
from __future__ import annotations

import math

import pytest
import torch

from tri3d.models import EqualizedLinear, TriplaneDecoder


@pytest.mark.parametrize("n_hidden", [1, 3])
def test_layer_layout_and_parameter_count(n_hidden):
    dec = TriplaneDecoder(in_features=32, hidden=64, n_hidden=n_hidden, out_features=32)
    expected = (32 * 64 + 64) + (n_hidden - 1) * (64 * 64 + 64) + (64 * 33 + 33)
    assert sum(p.numel() for p in dec.parameters()) == expected
    sigma, rgb = dec(torch.randn(2, 5, 32))
    assert sigma.shape == (2, 5, 1) and rgb.shape == (2, 5, 32)
    assert (rgb > -1e-3).all() and (rgb < 1 + 1e-3).all()


def test_equalized_learning_rate():
    torch.manual_seed(0)
    layer = EqualizedLinear(256, 8, lr_multiplier=0.01)
    # Stored weights are N(0, 1) / lr_mul; applied weights N(0, 1/fan_in).
    assert abs(layer.weight.std().item() * 0.01 - 1) < 0.05
    w, b = layer.effective()
    torch.testing.assert_close(w, layer.weight * 0.01 / math.sqrt(256))
    x = torch.randn(4, 256)
    torch.testing.assert_close(layer(x), x @ w.T + b)
    # The gradient w.r.t. the stored weight carries the run-time gain.
    layer(x).sum().backward()
    torch.testing.assert_close(layer.weight.grad, (0.01 / 16) * torch.ones(8, 1) * x.sum(0)[None])


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_hidden"):
        TriplaneDecoder(n_hidden=0)
    with pytest.raises(ValueError, match="lr_multiplier"):
        EqualizedLinear(4, 4, lr_multiplier=0.0)
