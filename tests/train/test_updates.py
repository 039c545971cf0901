"""The weight updates of a training step against closed forms: Adam's (StyleGAN2's betas
and eps) and G_ema's (StyleGAN2-ADA's half-life with its ramp-up)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tri3d.train.loop import make_adam, update_ema


class _Net(nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(5, 3)
        self.scale = nn.Parameter(torch.randn(7, generator=gen, dtype=torch.float64))
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(3, 5, generator=gen))
            self.fc.bias.copy_(torch.randn(3, generator=gen))
        self.register_buffer("w_avg", torch.randn(4, generator=gen))


@pytest.mark.parametrize("nimg, ema_kimg, rampup, half_life", [
    (1000, 10.0, 0.05, 50.0),  # the ramp-up caps the half-life at nimg x rampup
    (10**6, 2.5, 0.05, 2500.0),  # past the ramp-up: ema_kimg
    (1000, 2.5, None, 2500.0),  # no ramp-up
])
def test_ema_moves_each_parameter_by_the_half_life_and_copies_buffers(nimg, ema_kimg, rampup, half_life):
    G, G_ema = _Net(0), _Net(1)
    before = {k: v.clone() for k, v in G_ema.state_dict().items()}
    batch = 8
    update_ema(G_ema, G, batch, nimg, ema_kimg, rampup)
    beta = 0.5 ** (batch / half_life)  # the share of the old average kept
    for name, p in G.named_parameters():
        expected = before[name].double() * beta + p.detach().double() * (1 - beta)
        got = G_ema.get_parameter(name)
        assert got.dtype == p.dtype
        tol = 1e-12 if p.dtype == torch.float64 else 1e-6
        torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol)
    assert torch.equal(G_ema.w_avg, G.w_avg)


def test_adam_takes_three_steps_of_the_adam_rule():
    net = _Net(0).float()
    lr, betas, eps = 0.004, (0.0, 0.99), 1e-8
    opt = make_adam(net, lr, betas)
    gen = torch.Generator().manual_seed(1)
    expected = {name: p.detach().double().clone() for name, p in net.named_parameters()}
    m = {name: torch.zeros_like(p) for name, p in expected.items()}
    v = {name: torch.zeros_like(p) for name, p in expected.items()}
    for t in range(1, 4):
        for name, p in net.named_parameters():
            g = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.grad = g.to(p.dtype)
            g = p.grad.double()
            m[name] = betas[0] * m[name] + (1 - betas[0]) * g
            v[name] = betas[1] * v[name] + (1 - betas[1]) * g * g
            m_hat, v_hat = m[name] / (1 - betas[0] ** t), v[name] / (1 - betas[1] ** t)
            expected[name] -= lr * m_hat / (v_hat.sqrt() + eps)
        opt.step()
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.detach().double(), expected[name], rtol=1e-6, atol=1e-7)
