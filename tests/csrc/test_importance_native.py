"""Native importance sampler vs the reference, and against the PDF it samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from tri3d.ops.importance import importance_depths, smooth_weights


def coarse(B, R, S, seed):
    g = torch.Generator().manual_seed(seed)
    depths = torch.sort(2 + torch.rand(B, R, S, 1, generator=g), dim=2).values
    weights = torch.rand(B, R, S - 1, 1, generator=g) ** 4
    weights[0, 0] = 0  # empty ray: the floor makes the density uniform
    weights[0, 1, -1] = 5  # all mass at the far end
    return depths, weights


@pytest.mark.parametrize("S", [4, 5, 48, 96, 97])
@pytest.mark.parametrize("deterministic", [False, True])
def test_matches_reference_with_same_uniforms(native_ext, S, deterministic):
    depths, weights = coarse(2, 30, S, seed=S)
    kw = dict(deterministic=deterministic)
    ref = importance_depths(depths, weights, 33, generator=torch.Generator().manual_seed(1), impl="ref", **kw)
    cpp = importance_depths(depths, weights, 33, generator=torch.Generator().manual_seed(1), impl="cpp", **kw)
    torch.testing.assert_close(cpp, ref, rtol=0, atol=2e-5)
    mids = (depths[:, :, 1:] + depths[:, :, :-1]) / 2
    assert (cpp >= mids[:, :, :1] - 1e-6).all() and (cpp <= mids[:, :, -1:] + 1e-6).all()


def naive_importance(depths, weights, u):
    """EG3D's inverse-CDF sampling of one ray written out in Python floats (fp64)."""
    L = len(weights)
    smooth = [(max(weights[max(j - 1, 0)], weights[j]) + max(weights[j], weights[min(j + 1, L - 1)])) / 2 + 0.01
              for j in range(L)]
    density = [a + 1e-5 for a in smooth[1:-1]]
    total = sum(density)
    cdf = [0.0]
    for p in density:
        cdf.append(cdf[-1] + p / total)
    mids = [(depths[k] + depths[k + 1]) / 2 for k in range(len(depths) - 1)]
    K = len(density)
    out = []
    for x in u:
        idx = sum(1 for c in cdf if c <= x)
        below, above = max(idx - 1, 0), min(idx, K)
        denom = cdf[above] - cdf[below]
        denom = 1.0 if denom < 1e-5 else denom
        out.append(mids[below] + (x - cdf[below]) / denom * (mids[above] - mids[below]))
    return out


@pytest.mark.parametrize("impl", ["ref", "cpp"])
def test_fp64_inputs_sample_in_fp64(native_ext, impl):
    depths, weights = coarse(1, 6, 9, seed=3)
    depths, weights = depths.double(), weights.double()
    out = importance_depths(depths, weights, 7, generator=torch.Generator().manual_seed(4), impl=impl)
    assert out.dtype == torch.float64
    u = torch.rand(6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for r in range(6):
        expected = naive_importance(depths[0, r, :, 0].tolist(), weights[0, r, :, 0].tolist(), u[r].tolist())
        np.testing.assert_allclose(out[0, r, :, 0].numpy(), expected, rtol=0, atol=1e-12)


def test_follows_the_smoothed_pdf(native_ext):
    S, n = 12, 100_000
    depths = torch.linspace(2.0, 3.1, S).reshape(1, 1, S, 1)
    weights = torch.tensor([0.0, 0.1, 0.9, 0.2, 0.0, 0.0, 0.5, 0.3, 0.0, 0.05, 0.0]).reshape(1, 1, S - 1, 1)
    x = importance_depths(depths, weights, n, generator=torch.Generator().manual_seed(2), impl="cpp").flatten().numpy()
    mids = ((depths[0, 0, 1:, 0] + depths[0, 0, :-1, 0]) / 2).double().numpy()
    edges = mids[: S - 2]  # bins between consecutive midpoints that carry interior weights
    p = (smooth_weights(weights.reshape(1, -1).double())[0, 1:-1] + 1e-5).numpy()
    p = p / p.sum()
    counts, _ = np.histogram(x, bins=edges)
    assert counts.sum() == n
    assert stats.chisquare(counts, p * n).pvalue > 0.01


@pytest.mark.parametrize("Sa, Sb", [(4, 1), (48, 48), (13, 29)])
def test_native_merge_matches_sort(native_ext, Sa, Sb):
    from tri3d.ops import merge_samples

    g = torch.Generator().manual_seed(Sa * Sb)
    da = torch.sort(torch.rand(2, 7, Sa, 1, generator=g), dim=2).values
    db = torch.rand(2, 7, Sb, 1, generator=g)
    sa, sb = torch.randn(2, 7, Sa, 1, generator=g), torch.randn(2, 7, Sb, 1, generator=g)
    ca, cb = torch.rand(2, 7, Sa, 3, generator=g), torch.rand(2, 7, Sb, 3, generator=g)
    sa.requires_grad_()
    ref = merge_samples(da, sa, ca, db, sb, cb, impl="ref")
    nat = merge_samples(da, sa, ca, db, sb, cb, impl="cpp")
    for a, b in zip(nat, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (nat[0].diff(dim=2) >= 0).all()
    (grad,) = torch.autograd.grad(nat[1].sum(), sa)
    assert torch.equal(grad, torch.ones_like(sa))  # every coarse sample appears exactly once
    with pytest.raises(ValueError, match="depths_a must be sorted"):
        merge_samples(da.flip(2), sa, ca, db, sb, cb, impl="cpp")


def _tie_order(coarse: list[float], fine: list[float]) -> list[int]:
    """The native merge's documented order, written independently: by depth, coarse before
    fine at equal depth, then by index."""
    keys = [(v, 0, i) for i, v in enumerate(coarse)] + [(v, 1, j) for j, v in enumerate(fine)]
    return [i if kind == 0 else len(coarse) + i for _, kind, i in sorted(keys)]


@pytest.mark.parametrize("Sb", [1, 37, 128])
def test_native_merge_order_with_ties(native_ext, Sb):
    """Coarse and fine depths drawn from 6 values (ties within and across the sets): the
    native order is exactly the documented one, up to the native limit of fine samples."""
    from tri3d.ops.merge import merge_order_native

    g = torch.Generator().manual_seed(Sb)
    da = torch.sort(torch.randint(0, 6, (3, 5, 20, 1), generator=g).double(), dim=2).values
    db = torch.randint(0, 6, (3, 5, Sb, 1), generator=g).double()
    order = merge_order_native(da, db)
    for b in range(3):
        for r in range(5):
            expected = _tie_order(da[b, r, :, 0].tolist(), db[b, r, :, 0].tolist())
            assert order[b, r, :, 0].tolist() == expected


def test_native_merge_limit_of_fine_samples(native_ext):
    """Above MERGE_MAX_FINE fine samples per ray, auto merges with the reference, an explicit
    native request says why it cannot, and the raw binding refuses (its local array would
    overflow); the limit is the one compiled into the cores."""
    from tri3d import _backend
    from tri3d.ops import merge_samples
    from tri3d.ops.merge import MERGE_MAX_FINE

    header = (Path(__file__).parents[2] / "csrc" / "importance.h").read_text()
    assert f"constexpr int kMergeMaxFine = {MERGE_MAX_FINE};" in header
    g = torch.Generator().manual_seed(0)
    da = torch.sort(torch.rand(1, 2, 6, 1, generator=g), dim=2).values
    db = torch.rand(1, 2, MERGE_MAX_FINE, 1, generator=g)  # at the limit: native
    sa, sb = torch.randn(1, 2, 6, 1, generator=g), torch.randn(1, 2, MERGE_MAX_FINE, 1, generator=g)
    for a, b in zip(merge_samples(da, sa, sa, db, sb, sb, impl="cpp"), merge_samples(da, sa, sa, db, sb, sb, impl="ref")):
        assert torch.equal(a, b)
    n = MERGE_MAX_FINE + 1
    da = torch.sort(torch.rand(1, 2, 6, 1, generator=g), dim=2).values
    db = torch.rand(1, 2, n, 1, generator=g)
    sa, sb = torch.randn(1, 2, 6, 1, generator=g), torch.randn(1, 2, n, 1, generator=g)
    ca, cb = torch.rand(1, 2, 6, 2, generator=g), torch.rand(1, 2, n, 2, generator=g)
    auto = merge_samples(da, sa, ca, db, sb, cb)
    ref = merge_samples(da, sa, ca, db, sb, cb, impl="ref")
    for a, b in zip(auto, ref):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match=f"at most {MERGE_MAX_FINE} fine samples per ray, got {n}"):
        merge_samples(da, sa, ca, db, sb, cb, impl="cpp")
    out = torch.empty(2, 6 + n)
    order = torch.empty(2, 6 + n, dtype=torch.int64)
    with pytest.raises(ValueError, match=f"at most {MERGE_MAX_FINE} fine samples per ray, got n={n}"):
        _backend.native().merge_sorted("cpu", "float32", 2, 6, n, da.data_ptr(), db.data_ptr(), out.data_ptr(),
                                       order.data_ptr(), 0)
