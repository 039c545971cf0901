"""Fused Triton triplane_decode vs the fp64 reference (interpreter on CPU, real on CUDA)."""
from __future__ import annotations

import copy

import pytest
import torch

import torch.nn.functional as F

from tri3d.models import TriplaneDecoder
from tri3d.models.decoder import decoder_rgb_activation
from tri3d.ops import sample_triplane_ref, triplane_decode
from tri3d.testing import FLOORS, assert_fused_close, launch_mutant, mutated_module, tf32_matmul

pytest.importorskip("triton")


def make_case(device, *, n_hidden, C=8, hidden=16, C_out=3, T=2, B=2, N=37, H=7, W=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    planes = torch.randn(T, 3, C, H, W, generator=g)
    xyz = (torch.rand(B, N, 3, generator=g) - 0.5) * 1.3  # ~1/3 of points leave the box on some axis
    torch.manual_seed(seed)
    decoder = TriplaneDecoder(in_features=C, hidden=hidden, n_hidden=n_hidden, out_features=C_out)
    with torch.no_grad():  # non-zero biases so every path is exercised
        for layer in decoder.layers:
            layer.bias.normal_()
    return planes.to(device), xyz.to(device), decoder.to(device)


def run(planes, xyz, decoder, cotangents, decode=triplane_decode, **kw):
    """Outputs and gradients w.r.t. planes and every decoder parameter."""
    planes = planes.detach().requires_grad_()
    sigma, rgb = decode(planes, xyz, decoder, **kw)
    loss = (sigma * cotangents[0]).sum() + (rgb * cotangents[1]).sum()
    grads = torch.autograd.grad(loss, [planes, *decoder.parameters()])
    return [sigma, rgb, *grads]


def compare(planes, xyz, decoder, *, plane_dtype, precision, plane_axes="xyz", plane_index=None, floor_key="fp32"):
    """Fused vs same-precision ref vs fp64 ref for outputs and all gradients."""
    kw = dict(plane_axes=plane_axes, plane_index=plane_index)
    dec64 = copy.deepcopy(decoder).double()
    idx64 = None if plane_index is None else plane_index.cpu()
    cot64 = _cot(xyz, decoder)  # drawn once in fp64, cast for every path (the same numbers)
    ref64 = run(planes.cpu().double(), xyz.cpu().double(), dec64.cpu(), cot64, plane_axes=plane_axes,
                plane_index=idx64, impl="ref")
    cot = [c.float().to(planes.device) for c in cot64]
    p = planes.to(plane_dtype)
    fused = run(p, xyz, decoder, cot, precision=precision, impl="triton", **kw)
    if precision == "tf32":  # every MLP product with truncated operands, as tensor cores and the interpreter do
        ref_same = run(p, xyz, decoder, cot, decode=_tf32_decode_ref, **kw)
    else:
        ref_dec = copy.deepcopy(decoder).to(plane_dtype) if plane_dtype != torch.float32 else decoder
        ref_same = run(p, xyz.to(plane_dtype), ref_dec, [c.to(plane_dtype) for c in cot], impl="ref", **kw)
    names = ["sigma", "rgb", "grad planes"] + [f"grad {n}" for n, _ in decoder.named_parameters()]
    for name, f, r, r64 in zip(names, fused, ref_same, ref64):
        assert_fused_close(f.cpu().float(), r.cpu().float(), r64, FLOORS[floor_key], name)


def _tf32_decode_ref(planes, xyz, decoder, *, plane_axes, plane_index):
    """``triplane_decode_ref`` with tf32 MLP products (forward and backward)."""
    x = sample_triplane_ref(planes, xyz, plane_axes=plane_axes, plane_index=plane_index)
    layers = decoder.effective_layers()
    for i, (weight, bias) in enumerate(layers):
        x = tf32_matmul(x, weight.t()) + bias
        x = F.softplus(x) if i < len(layers) - 1 else x
    return x[..., :1], decoder_rgb_activation(x[..., 1:])


def _cot(xyz, decoder):  # random fp64 cotangents of (sigma, rgb)
    g = torch.Generator().manual_seed(123)
    B, N = xyz.shape[:2]
    return [torch.randn(B, N, 1, generator=g, dtype=torch.float64),
            torch.randn(B, N, decoder.out_features, generator=g, dtype=torch.float64)]


@pytest.mark.parametrize("n_hidden", [1, 3])
@pytest.mark.parametrize("plane_axes", ["xyz", "eg3d"])
def test_fp32_matches_reference(device, n_hidden, plane_axes):
    planes, xyz, dec = make_case(device, n_hidden=n_hidden, seed=n_hidden)
    compare(planes, xyz, dec, plane_dtype=torch.float32, precision="ieee", plane_axes=plane_axes)


@pytest.mark.parametrize("n_hidden", [1, 3])
def test_bf16_planes_and_operands(device, n_hidden):
    planes, xyz, dec = make_case(device, n_hidden=n_hidden, N=70, seed=5)
    compare(planes, xyz, dec, plane_dtype=torch.bfloat16, precision="bf16", floor_key="bf16")


@pytest.mark.parametrize("n_hidden", [1, 3])
def test_tf32_operands(device, n_hidden):
    """Bounded by a reference whose products truncate their operands to tf32 as tensor cores
    do (the interpreter truncates too), so the bound holds on hardware."""
    planes, xyz, dec = make_case(device, n_hidden=n_hidden, C=32, hidden=64, C_out=32, N=70, H=12, W=10, seed=6)
    compare(planes, xyz, dec, plane_dtype=torch.float32, precision="tf32", floor_key="tf32")


def test_tf32_reference_truncates():
    """The tf32 reference really is coarser than fp32 (else its bound would be the fp32 one)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 64, generator=g), torch.randn(64, 64, generator=g)
    exact = a.double() @ b.double()
    err_tf32 = ((tf32_matmul(a, b) - exact).abs().max() / exact.abs().max()).item()
    err_fp32 = ((a @ b - exact).abs().max() / exact.abs().max()).item()
    assert 1e-4 < err_tf32 < 2e-3 and err_fp32 < 1e-6


def test_eg3d_sizes_odd_point_count(device):
    # EG3D widths (C 32, hidden 64, 33 outputs padded to 64) and P = 2 * 101, not a block multiple.
    planes, xyz, dec = make_case(device, n_hidden=3, C=32, hidden=64, C_out=32, N=101, H=12, W=10, seed=7)
    compare(planes, xyz, dec, plane_dtype=torch.float32, precision="ieee")


def test_plane_index_many_triplanes(device):
    planes, xyz, dec = make_case(device, n_hidden=1, T=3, B=2, N=45, seed=8)
    index = torch.randint(0, 3, (2, 45), generator=torch.Generator().manual_seed(0)).to(device)
    compare(planes, xyz, dec, plane_dtype=torch.float32, precision="ieee", plane_index=index)
    # A triplane no point reads gets a zero gradient.
    index = torch.zeros_like(index)
    p = planes.detach().requires_grad_()
    sigma, rgb = triplane_decode(p, xyz, dec, plane_index=index, impl="triton")
    (sigma.sum() + rgb.sum()).backward()
    assert p.grad[1:].abs().max() == 0 and p.grad[0].abs().max() > 0


@pytest.mark.parametrize("frozen", ["decoder", "planes"])
def test_gradients_not_asked_for_are_skipped(device, monkeypatch, frozen):
    """A frozen decoder (inversion's latent phase) launches the backward without the weight
    reductions, fixed planes without the scatter; what is asked for still matches fp64."""
    import tri3d.kernels.triplane_mlp as kernels

    planes, xyz, dec = make_case(device, n_hidden=3, N=50, seed=11)
    launched = []
    real = kernels.triplane_mlp_backward
    monkeypatch.setattr(kernels, "triplane_mlp_backward",
                        lambda *a, **kw: launched.append((kw["plane_grads"], kw["weight_grads"])) or real(*a, **kw))
    dec64 = copy.deepcopy(dec).cpu().double()
    cot = _cot(xyz, dec)
    outputs = []
    for decoder, p, x, impl in ((dec, planes, xyz, "triton"), (dec64, planes.cpu().double(), xyz.cpu().double(), "ref")):
        decoder.requires_grad_(frozen != "decoder")
        p = p.detach().requires_grad_(frozen != "planes")
        sigma, rgb = triplane_decode(p, x, decoder, impl=impl, precision="ieee")
        loss = (sigma * cot[0].to(sigma)).sum() + (rgb * cot[1].to(rgb)).sum()
        outputs.append(torch.autograd.grad(loss, [p] if frozen == "decoder" else list(decoder.parameters())))
    assert launched == [(frozen != "planes", frozen != "decoder")]
    for got, want in zip(*outputs):
        assert_fused_close(got.cpu().float(), want.float(), want, FLOORS["fp32"], frozen)


@pytest.mark.parametrize("layout", ["default", "index"])
def test_backward_prefetch_matches_reference(device, monkeypatch, layout):
    """The backward's ``prefetch`` config (each block's coordinates, triplane index and
    incoming gradient loaded during the block before): 3 x 37 points are 7 blocks of 16,
    so on the CPU's 4 programs each walks 2, reads its successor's first block ahead, and
    the last reads a block past the points. Every gradient matches the references."""
    import tri3d.kernels.triplane_mlp as kernels

    configs = []
    real = kernels.bwd_config
    monkeypatch.setattr(kernels, "bwd_config", lambda *a: configs.append(dict(real(*a), prefetch=True)) or configs[-1])
    planes, xyz, dec = make_case(device, n_hidden=3, T=3, B=3, N=37, seed=13)
    index = None if layout == "default" else torch.randint(0, 3, (3, 37), generator=torch.Generator().manual_seed(2))
    compare(planes, xyz, dec, plane_dtype=torch.float32, precision="ieee",
            plane_index=None if index is None else index.to(device))
    assert configs and all(c["prefetch"] and c["block"] == 16 for c in configs)


@pytest.mark.parametrize("layout", ["default", "index"])
def test_64bit_texel_offsets(device, monkeypatch, layout):
    """Planes of 2^31 elements or more take 64-bit texel offsets (``texels_fit_i32`` false):
    that path, which small planes never take, matches the references too."""
    import tri3d.kernels.triplane_mlp as kernels

    asked = []
    monkeypatch.setattr(kernels, "texels_fit_i32", lambda *shape: asked.append(shape) or False)
    planes, xyz, dec = make_case(device, n_hidden=3, T=3, B=3, N=41, seed=12)
    index = None if layout == "default" else torch.randint(0, 3, (3, 41), generator=torch.Generator().manual_seed(1))
    compare(planes, xyz, dec, plane_dtype=torch.float32, precision="ieee",
            plane_index=None if index is None else index.to(device))
    assert asked and all(shape == (3, 7, 9, 8) for shape in asked)  # [T, H, W, C] of the launch


def test_texel_offset_bound_is_the_largest_offset():
    """``texels_fit_i32``'s bound against every offset the kernels can form, enumerated (the
    clamped bilinear corners of every plane, each channel), and its edge at 2^31."""
    from tri3d.kernels.triplane_mlp import texels_fit_i32

    for T, H, W, C in ((1, 3, 5, 2), (2, 4, 3, 3), (3, 2, 2, 1)):
        offsets = [(t * 3 + k) * H * W * C + (yi * W + xi) * C + c for t in range(T) for k in range(3)
                   for yi in range(-2, H + 2) for xi in range(-2, W + 2) for c in range(C)]
        assert min(offsets) == -(2 * W + 2) * C
        assert max(offsets) == T * 3 * H * W * C + (2 * W + 2) * C - 1
    # W 1, C 2: the largest offset is 6 H + 7, which is 2^31 - 1 for H = 357913940
    assert texels_fit_i32(1, 357913940, 1, 2) and not texels_fit_i32(1, 357913941, 1, 2)
    assert texels_fit_i32(8, 256, 256, 32)  # imagenet's render: 8 triplanes of 3 x 32 x 256 x 256


def test_default_layout_equals_explicit_index(device):
    planes, xyz, dec = make_case(device, n_hidden=1, T=2, B=2, seed=9)
    index = torch.arange(2, device=device)[:, None].expand(2, xyz.shape[1])
    a = triplane_decode(planes, xyz, dec, impl="triton")
    b = triplane_decode(planes, xyz, dec, impl="triton", plane_index=index)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_coordinate_grad_and_bad_input_rejected(device):
    planes, xyz, dec = make_case(device, n_hidden=1)
    with pytest.raises(ValueError, match="xyz requires grad"):
        triplane_decode(planes, xyz.requires_grad_(), dec, impl="triton")
    with pytest.raises(ValueError, match="precision"):
        triplane_decode(planes, xyz.detach(), dec, impl="triton", precision="fp8")
    with pytest.raises(ValueError, match="decoder expects"):
        triplane_decode(planes[:, :, :4], xyz.detach(), dec, impl="triton")
    with pytest.raises(ValueError, match="hidden layers"):
        triplane_decode(planes, xyz.detach(), TriplaneDecoder(in_features=8, hidden=16, n_hidden=4).to(device),
                        impl="triton")


def test_auto_picks_triton_only_on_cuda(monkeypatch):
    from tri3d.ops._dispatch import triton_auto_unavailable, triton_unavailable

    assert triton_unavailable(torch.device("cuda")) is None
    assert triton_auto_unavailable(torch.device("cuda")) is None
    monkeypatch.setattr("tri3d.ops._dispatch.TRITON_INTERPRETER", True)
    assert triton_unavailable(torch.device("cpu")) is None  # explicit request: the interpreter
    assert triton_auto_unavailable(torch.device("cpu")) is not None  # auto never picks it
    monkeypatch.setattr("tri3d.ops._dispatch.TRITON_INTERPRETER", False)
    assert "CUDA" in triton_unavailable(torch.device("cpu"))
    monkeypatch.setattr("tri3d.ops._dispatch.TRITON_INSTALLED", False)
    assert triton_unavailable(torch.device("cuda")) == "the triton package is not installed"
    assert triton_auto_unavailable(torch.device("cuda")) == "the triton package is not installed"


def test_custom_op_checks_and_compiles_without_graph_break(device):
    from tri3d.ops.triplane import pack_decoder

    planes, xyz, dec = make_case(device, n_hidden=3, N=20)
    params, n_hidden, n_out = pack_decoder([(w.detach(), b.detach()) for w, b in dec.effective_layers()])
    planes_cl = planes.permute(0, 1, 3, 4, 2).contiguous().requires_grad_()
    args = (planes_cl, xyz.reshape(-1, 3).contiguous(), None, *[p.requires_grad_() for p in params],
            n_hidden, n_out, xyz.shape[1], 1.0, False, "ieee")
    torch.library.opcheck(torch.ops.tri3d.triplane_mlp_fwd.default, args)

    compiled = torch.compile(lambda p, x: triplane_decode(p, x, dec, impl="triton"), backend="aot_eager", fullgraph=True)
    p = planes.detach().requires_grad_()
    sigma, rgb = compiled(p, xyz)
    (sigma.sum() + rgb.square().sum()).backward()
    q = planes.detach().requires_grad_()
    sigma_e, rgb_e = triplane_decode(q, xyz, dec, impl="triton")
    (sigma_e.sum() + rgb_e.square().sum()).backward()
    torch.testing.assert_close((sigma, rgb, p.grad), (sigma_e, rgb_e, q.grad))


def test_planes_for_decode_layout_is_used_without_copy(device, monkeypatch):
    """The fused path reads channels-last planes; ``planes_for_decode`` converts once and
    ``triplane_decode`` then uses that memory as it is (same pointer, same results and
    plane gradients as from the plain layout). The reference path keeps the tensor."""
    import tri3d.ops.triplane as triplane_module
    from tri3d.ops import planes_for_decode

    assert planes_for_decode(torch.randn(1, 3, 4, 5, 6), impl="ref").is_contiguous()
    planes, xyz, dec = make_case(device, n_hidden=1, N=40)
    base = planes.detach().requires_grad_()
    converted = planes_for_decode(base, impl="triton")
    assert converted.shape == planes.shape and converted.permute(0, 1, 3, 4, 2).is_contiguous()
    assert torch.equal(converted, planes)

    pointers = []
    real = triplane_module._fused_fwd

    def spy(planes_cl, *args):
        pointers.append(planes_cl.data_ptr())
        return real(planes_cl, *args)

    monkeypatch.setattr(triplane_module, "_fused_fwd", spy)
    cot = _cot(xyz, dec)
    outs = [triplane_decode(converted, xyz[:, :20], dec, impl="triton"),
            triplane_decode(converted, xyz[:, 20:], dec, impl="triton")]
    assert pointers == [converted.data_ptr()] * 2  # both calls read the one converted copy
    sigma_parts, rgb_parts = (torch.cat(parts, dim=1) for parts in zip(*outs))
    loss = (sigma_parts * cot[0].to(sigma_parts)).sum() + (rgb_parts * cot[1].to(rgb_parts)).sum()
    (grad_converted,) = torch.autograd.grad(loss, [base])
    plain = planes.detach().requires_grad_()
    sigma, rgb = triplane_decode(plain, xyz, dec, impl="triton")
    (grad_plain,) = torch.autograd.grad((sigma * cot[0].to(sigma)).sum() + (rgb * cot[1].to(rgb)).sum(), [plain])
    torch.testing.assert_close(sigma_parts, sigma, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad_converted, grad_plain, rtol=1e-6, atol=1e-6)


def test_renderer_converts_planes_once_per_render(device, monkeypatch):
    """Coarse and fine decode calls of one render read the same channels-last copy."""
    import tri3d.ops.triplane as triplane_module
    from tri3d.render import TriplaneRenderer
    from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses

    monkeypatch.setattr(triplane_module, "triton_auto_unavailable", lambda device: None)  # auto -> fused
    pointers = []
    real = triplane_module._fused_fwd
    monkeypatch.setattr(triplane_module, "_fused_fwd", lambda planes_cl, *a: pointers.append(planes_cl.data_ptr())
                        or real(planes_cl, *a))
    planes, _, dec = make_case(device, n_hidden=1, T=1, B=1)
    cams = sample_multiview_poses(1, 2, generator=torch.Generator().manual_seed(0)).to(device)
    TriplaneRenderer(depth_samples=4, importance_samples=4, box_warp=2.0)(planes, dec, cams, fov_to_intrinsics(30.0), 4)
    assert len(pointers) == 2 and pointers[0] == pointers[1] and pointers[0] != planes.data_ptr()


@pytest.mark.parametrize("synthesis_dtype", [None, torch.bfloat16])
def test_generator_converts_planes_once_per_render_in_their_dtype(device, monkeypatch, synthesis_dtype):
    """The generator's render (training's path: ``G.synthesize`` -> ``G.field``) hands every
    decode call of one render the same channels-last copy, in bf16 under bf16 training."""
    import tri3d.ops.triplane as triplane_module
    from tri3d.models import GeneratorConfig, RendererConfig, TriplaneGenerator
    from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses

    monkeypatch.setattr(triplane_module, "triton_auto_unavailable", lambda device: None)  # auto -> fused
    seen = []
    real = triplane_module._fused_fwd
    monkeypatch.setattr(triplane_module, "_fused_fwd", lambda planes_cl, *a: seen.append(
        (planes_cl.data_ptr(), planes_cl.dtype)) or real(planes_cl, *a))
    torch.manual_seed(0)
    G = TriplaneGenerator(GeneratorConfig(
        z_dim=16, w_dim=16, triplane_resolution=16, triplane_channels=8, channel_base=256, channel_max=32,
        decoder_hidden=16, image_resolution=4, neural_rendering_resolution=4,
        renderer=RendererConfig(depth_samples=4, importance_samples=4, near=2.0, far=3.4))).to(device)
    G.synthesis_dtype = synthesis_dtype
    cams = sample_multiview_poses(1, 1, generator=torch.Generator().manual_seed(0)).to(device)
    G(torch.randn(1, 16, device=device), None, cams, fov_to_intrinsics(30.0).to(device), noise_mode="const")
    assert len(seen) == 2 and seen[0] == seen[1]  # coarse and fine: one copy
    assert seen[0][1] == (synthesis_dtype or torch.float32)


def test_auto_precision_is_tf32_on_cuda_and_exact_elsewhere(device, monkeypatch):
    """The default ``precision="auto"`` gives tensor-core (tf32) dots on CUDA tensors and
    exact fp32 under the interpreter; the renderer and generator configs default to it."""
    import tri3d.ops.triplane as triplane_module
    from tri3d.models import RendererConfig
    from tri3d.ops.triplane import resolve_precision
    from tri3d.render import TriplaneRenderer

    assert resolve_precision("auto", torch.device("cuda", 1)) == "tf32"
    assert resolve_precision("auto", torch.device("cpu")) == "ieee"
    assert [resolve_precision(p, torch.device("cuda")) for p in ("ieee", "tf32", "bf16")] == ["ieee", "tf32", "bf16"]
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", torch.device("cpu"))
    assert TriplaneRenderer().precision == "auto" and RendererConfig().precision == "auto"

    seen = []
    real = triplane_module._fused_fwd

    def spy(*args):
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(triplane_module, "_fused_fwd", spy)
    planes, xyz, dec = make_case(device, n_hidden=1, N=20)
    triplane_decode(planes, xyz, dec, impl="triton")
    assert seen == ["tf32" if xyz.is_cuda else "ieee"]


# One line of the kernels made wrong each (a gradient write scaled by 1.5, a term dropped, a
# block's prefetch off by one): (text in kernels/triplane_mlp.py, its replacement, the first
# output ``compare`` must then reject, whether the backward prefetches). Issue 14: most such
# errors used to pass the comparison; each must fail it, at the output it touches first, at
# every precision (the tf32 and bf16 bounds included) except the two that change a result by
# about 1e-3 (the rgb padding), below what bf16 (and tf32's forward) can resolve: those at
# exact fp32 only.
MUTANTS = {
    "rgb weight gradient x1.5": ("acc_wr += _dot(", "acc_wr += 1.5 * _dot(", "grad layers.3.weight", False),
    "rgb bias gradient x1.5": ("acc_br += g_rgb", "acc_br += 1.5 * g_rgb", "grad layers.3.bias", False),
    "sigma weight gradient x1.5": ("acc_ws += a_last", "acc_ws += 1.5 * a_last", "grad layers.3.weight", False),
    "sigma bias gradient x1.5": ("acc_bs += g_sigma", "acc_bs += 1.5 * g_sigma", "grad layers.3.bias", False),
    "layer 2 weight gradient x1.5": ("acc_w2 += _dot(", "acc_w2 += 1.5 * _dot(", "grad layers.2.weight", False),
    "layer 2 bias gradient x1.5": ("acc_b2 += g", "acc_b2 += 1.5 * g", "grad layers.2.bias", False),
    "layer 1 weight gradient x1.5": ("acc_w1 += _dot(", "acc_w1 += 1.5 * _dot(", "grad layers.1.weight", False),
    "layer 1 bias gradient x1.5": ("acc_b1 += g", "acc_b1 += 1.5 * g", "grad layers.1.bias", False),
    "layer 0 weight gradient x1.5": ("acc_w0 += _dot(", "acc_w0 += 1.5 * _dot(", "grad layers.0.weight", False),
    "layer 0 bias gradient x1.5": ("acc_b0 += g", "acc_b0 += 1.5 * g", "grad layers.0.bias", False),
    "plane scatter x1.5": ("wgt[:, None] * g, mask", "1.5 * wgt[:, None] * g, mask", "grad planes", False),
    "feature gradient x1.5": ("g_feat = _dot(g, tl.trans(w0), PRECISION) * (1.0 / 3.0)",
                              "g_feat = _dot(g, tl.trans(w0), PRECISION) * (1.5 / 3.0)", "grad planes", False),
    "gradient through layer 2 x1.5": ("g = _dot(g, tl.trans(w2), PRECISION) * _softplus_slope(a1)",
                                      "g = 1.5 * _dot(g, tl.trans(w2), PRECISION) * _softplus_slope(a1)", "grad planes",
                                      False),
    "gradient through layer 1 x1.5": ("g = _dot(g, tl.trans(w1), PRECISION) * _softplus_slope(a0)",
                                      "g = 1.5 * _dot(g, tl.trans(w1), PRECISION) * _softplus_slope(a0)", "grad planes",
                                      False),
    "gradient through the rgb columns x1.5": ("g = _dot(g_rgb, tl.trans(wr), PRECISION)",
                                              "g = 1.5 * _dot(g_rgb, tl.trans(wr), PRECISION)", "grad planes", False),
    "sigma's column gradient x1.5": ("(g + g_sigma[:, None] * w_sigma[None, :])",
                                     "(g + 1.5 * g_sigma[:, None] * w_sigma[None, :])", "grad planes", False),
    "rgb padding dropped from the backward's slope": ("g_rgb = g_rgb_in * s * (1.0 - s) * (1.0 + 2.0 * RGB_PAD_C)",
                                                      "g_rgb = g_rgb_in * s * (1.0 - s)", "grad planes", False),
    "recomputed layer 0 without its bias": ("z0 = _dot(feat, w0, PRECISION) + tl.load(b0_ptr + offs_h)[None, :]",
                                            "z0 = _dot(feat, w0, PRECISION)", "grad planes", False),
    "forward sigma without its bias": ("+ tl.load(bo_ptr + RP)", "", "sigma", False),
    "forward rgb without its padding offset": ("* (1.0 + 2.0 * RGB_PAD_C) - RGB_PAD_C", "* (1.0 + 2.0 * RGB_PAD_C)",
                                               "rgb", False),
    "prefetch reads the same block again": ("block_id + 1, P, BLOCK,", "block_id, P, BLOCK,", "grad planes", True),
}


SUBTLE_MUTANTS = ("rgb padding dropped from the backward's slope", "forward rgb without its padding offset")
PRECISION_CASES = {"ieee": (torch.float32, "fp32"), "tf32": (torch.float32, "tf32"), "bf16": (torch.bfloat16, "bf16")}
MUTANT_CASES = [(m, p) for m in MUTANTS for p in ("ieee", "tf32", "bf16") if p == "ieee" or m not in SUBTLE_MUTANTS]


LAUNCHERS = ("triplane_mlp_forward", "triplane_mlp_backward")


@pytest.mark.parametrize("mutant,precision", MUTANT_CASES)
def test_comparison_rejects_a_wrong_kernel_line(interpreter_device, monkeypatch, tmp_path, mutant, precision):
    """``compare`` fails, at the output the wrong line touches first, for each of ``MUTANTS``
    (a copy of the kernels with that line changed, launched in place of the real ones), with
    the bounds of ``precision``."""
    import tri3d.kernels.triplane_mlp as kernels

    old, new, first_wrong, prefetch = MUTANTS[mutant]
    bad = launch_mutant(monkeypatch, kernels, [(old, new)], tmp_path, LAUNCHERS)
    if prefetch:  # the mutant's launcher reads its own module's config
        monkeypatch.setattr(bad, "bwd_config", lambda *a: dict(kernels.bwd_config(*a), prefetch=True))
    planes, xyz, dec = make_case(interpreter_device, n_hidden=3, T=3, B=3, N=37, seed=13)
    plane_dtype, floor_key = PRECISION_CASES[precision]
    with pytest.raises(AssertionError, match=rf"^{first_wrong}: fused error"):
        compare(planes, xyz, dec, plane_dtype=plane_dtype, precision=precision, floor_key=floor_key)


def test_an_unchanged_copy_of_the_kernels_passes(interpreter_device, monkeypatch, tmp_path):
    """The mutants' machinery alone (a copy loaded from a file, launched in place of the
    real kernels) changes nothing: with no line changed the comparison passes."""
    import tri3d.kernels.triplane_mlp as kernels

    with pytest.raises(ValueError, match="occurs 0 times"):  # a mutant that no longer matches its kernel
        mutated_module(kernels, [("acc_w9 += _dot(", "")], tmp_path)
    launch_mutant(monkeypatch, kernels, [], tmp_path, LAUNCHERS)
    planes, xyz, dec = make_case(interpreter_device, n_hidden=3, T=3, B=3, N=37, seed=13)
    compare(planes, xyz, dec, plane_dtype=torch.float32, precision="ieee")
