"""Mapping, synthesis (+g), generator and discriminator: shapes, counts, conditioning."""
from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from tri3d.models import (
    Discriminator,
    DiscriminatorConfig,
    GeneratorConfig,
    MappingNetwork,
    RendererConfig,
    SynthesisNetwork,
    TriplaneGenerator,
)
from tri3d.models.layers import ToRGBLayer
from tri3d.models.mapping import CLASS_MEAN_SAMPLES, CLASS_MEAN_SEED
from tri3d.models.superres import SuperResolution
from tri3d.render.camera import fov_to_intrinsics, sample_multiview_poses
from tri3d.render.rays import pixel_rays


def small_g(**kw) -> GeneratorConfig:
    base = dict(z_dim=16, w_dim=16, num_classes=3, triplane_resolution=16, triplane_channels=8, channel_base=256,
                channel_max=32, decoder_hidden=16, image_resolution=16, neural_rendering_resolution=16,
                renderer=RendererConfig(depth_samples=6, importance_samples=6, near=2.0, far=3.4))
    base.update(kw)
    return GeneratorConfig(**base)


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("res", [32, 128])
def test_extra_blocks_roughly_double_synthesis(res):
    plain = SynthesisNetwork(512, res, 96, extra_blocks=False)
    deeper = SynthesisNetwork(512, res, 96, extra_blocks=True)
    ratio = count(deeper) / count(plain)
    assert 1.8 < ratio < 2.3, ratio
    # StyleGAN2 indexing: one w per conv + the last ToRGB. Every extra block adds 2 convs.
    assert plain.num_ws == 2 * len(plain.blocks)  # the 4x4 block has one conv, the last ToRGB one more
    assert deeper.num_ws == plain.num_ws + 2 * len(plain.blocks)
    assert len(deeper.blocks) == 2 * len(plain.blocks)


def test_num_ws_of_eg3d_triplane_synthesis_is_14():
    assert SynthesisNetwork(512, 256, 96).num_ws == 14


@pytest.mark.parametrize("extra_blocks", [False, True])
def test_torgb_reads_the_w_of_the_next_blocks_first_conv(extra_blocks):
    """Record which w every layer's affine receives; StyleGAN2: convs read 0, 1, 2, ... in
    order and a block's ToRGB reads the index after its own last conv."""
    net = SynthesisNetwork(8, 16, 3, channel_base=64, channel_max=8, extra_blocks=extra_blocks)
    ws = torch.arange(net.num_ws, dtype=torch.float32)[None, :, None].expand(1, -1, 8).contiguous()
    seen = []
    for block in net.blocks:
        layers = [block.conv0, block.conv1, block.torgb] if block.conv0 is not None else [block.conv1, block.torgb]
        for layer in layers:
            layer.affine.register_forward_hook(lambda m, inp, out, layer=layer: seen.append((layer, int(inp[0][0, 0]))))
    net(ws, noise_mode="none")
    convs = [i for layer, i in seen if not isinstance(layer, ToRGBLayer)]
    assert convs == list(range(net.num_ws - 1))
    expected_torgb, done = [], 0
    for block in net.blocks:
        done += 1 if block.conv0 is None else 2
        expected_torgb.append(done)
    assert [i for layer, i in seen if isinstance(layer, ToRGBLayer)] == expected_torgb
    assert expected_torgb[-1] == net.num_ws - 1


def test_superresolution_has_eg3d_structure():
    """EG3D's 64 -> 128 module: a 128-channel block at 64x64 without up-sampling, then a
    64-channel up-sampling block; 574,954 parameters at EG3D's defaults (w_dim 512, 32
    feature channels)."""
    sr = SuperResolution(32, 64, 128, 512, 128)
    assert count(sr) == 574_954
    b0, b1 = sr.blocks
    assert (b0.up, b0.resolution, b0.conv1.weight.shape[0]) == (1, 64, 128)
    assert (b1.up, b1.resolution, b1.conv1.weight.shape[0]) == (2, 128, 64)
    out = SuperResolution(8, 8, 16, 16, 16)(torch.randn(2, 8, 8, 8), torch.randn(2, 3, 16), noise_mode="none")
    assert out.shape == (2, 3, 16, 16)


def test_synthesis_output_is_a_triplane():
    G = TriplaneGenerator(small_g(extra_blocks=True, decoder_layers=3))
    ws = torch.randn(2, G.synthesis.num_ws, 16)
    planes = G.planes(ws)
    assert planes.shape == (2, 3, 8, 16, 16)
    assert len(G.decoder.layers) == 4  # "+d": 3 hidden layers + output


def test_bf16_training_keeps_the_synthesis_planes_in_bf16():
    """With ``synthesis_dtype`` bf16 the planes reach the decoder in bf16 (the fused path
    reads them as they are); the reference decode samples them in fp32, so rendering them
    equals rendering their exact fp32 values, and the gradient reaches the synthesis."""
    torch.manual_seed(0)
    G = TriplaneGenerator(small_g())
    G.synthesis_dtype = torch.bfloat16
    ws = torch.randn(2, G.synthesis.num_ws, 16)
    planes = G.planes(ws, noise_mode="const")
    assert planes.dtype == torch.bfloat16
    cams = sample_multiview_poses(2, 1, min_angle_deg=0)
    K = fov_to_intrinsics(30.0)
    with G.deterministic_rendering():
        bf16 = G.renderer.render_field(G.field(planes), cams, K, 8, batch=2)
        fp32 = G.renderer.render_field(G.field(planes.float()), cams, K, 8, batch=2)
    for key in ("rgb", "depth", "opacity"):
        assert torch.equal(bf16[key], fp32[key]), key
    bf16["rgb"].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.synthesis.parameters() if p.requires_grad)


def test_generator_renders_views_and_classes_matter():
    torch.manual_seed(0)
    G = TriplaneGenerator(small_g())
    z = torch.randn(2, 16)
    cams = sample_multiview_poses(2, 3, min_angle_deg=0)
    K = fov_to_intrinsics(30.0)
    out = G(z, torch.tensor([0, 1]), cams, K, noise_mode="const")
    assert out["image"].shape == (2, 3, 3, 16, 16) and out["depth"].shape == (2, 3, 1, 16, 16)
    assert out["image"].min() >= -1.01 and out["image"].max() <= 1.01
    w0 = G.mapping(z, torch.tensor([0, 0]))
    w1 = G.mapping(z, torch.tensor([1, 1]))
    assert (w0 - w1).abs().max() > 1e-3


def test_random_background_is_a_uniform_colour_per_view():
    """``background="random"``: every view's empty space shows its own colour, the
    generator's next draws from [-1, 1]^3 (so independent of the object), composited as
    colour + (1 - opacity) (bg + 1) over the same rendering a G without background gives."""
    torch.manual_seed(0)
    G_random = TriplaneGenerator(small_g(background="random"))
    G_none = TriplaneGenerator(small_g())
    G_none.load_state_dict(G_random.state_dict())  # neither has background parameters
    for G in (G_random, G_none):
        G.renderer.deterministic = True  # the generator then feeds only the background
    z, c = torch.randn(2, 16), torch.tensor([0, 2])
    cams, K = sample_multiview_poses(2, 3, min_angle_deg=0), fov_to_intrinsics(30.0)
    with torch.no_grad():
        shown = G_random(z, c, cams, K, noise_mode="const", generator=torch.Generator().manual_seed(5))
        bare = G_none(z, c, cams, K, noise_mode="const")
    bg = (shown["image"] - bare["image"]) / (1 - shown["opacity"]) - 1  # [2, 3, 3, 16, 16]
    expected = torch.rand(2, 3, 3, 1, 1, generator=torch.Generator().manual_seed(5)) * 2 - 1
    torch.testing.assert_close(bg, expected.expand_as(bg), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="background must be one of"):
        TriplaneGenerator(small_g(background="blue"))


def _sphere_hits(cams: torch.Tensor, K: torch.Tensor, radius: float):  # [B, V, 4, 4] -> depth, normal, hit
    """Closed-form ray-sphere intersections (sphere at the origin) of each pixel's ray."""
    B, V = cams.shape[:2]
    origins, dirs = pixel_rays(cams, K.expand(B, V, 3, 3), 16)  # [B, V, 256, 3]
    b = (origins * dirs).sum(-1)
    disc = b * b - ((origins * origins).sum(-1) - radius**2)
    t = -b - disc.clamp(min=0).sqrt()
    normal = F.normalize(origins + dirs * t[..., None], dim=-1)
    return t.reshape(B, V, 1, 16, 16), normal.reshape(B, V, 16, 16, 3), (disc > 0.01).reshape(B, V, 1, 16, 16)


def test_lambertian_shade_is_the_cosine_to_a_uniform_light_per_object():
    """``G.shading``: the shade is (1 - s) + s max(0, n . l), n the density's own normal at
    the given depth and l the generator's next normal draw, normalized: one direction per
    object, shared by its views. A half-space's density is linear, where the tetrahedron's
    differences are exact; on a ball's surface they are first-order (error ~ step / radius)."""
    G = TriplaneGenerator(small_g(shading=0.65))
    cams, K = sample_multiview_poses(3, 2, min_angle_deg=0), fov_to_intrinsics(30.0)
    light = F.normalize(torch.randn(3, 1, 3, generator=torch.Generator().manual_seed(7)), dim=-1)

    facing = F.normalize(torch.tensor([0.3, -0.5, 0.8]), dim=0)  # the half-space x . facing < 0.05

    def half_space(xyz: torch.Tensor):
        return 40 * (0.05 - xyz @ facing)[..., None], None

    origins, dirs = pixel_rays(cams, K.expand(3, 2, 3, 3), 16)
    depth = ((0.05 - origins @ facing) / (dirs @ facing)).reshape(3, 2, 1, 16, 16)
    shade = G.lambertian_shade(half_space, cams, K, depth, generator=torch.Generator().manual_seed(7))
    expected = 0.35 + 0.65 * (light @ facing).clamp(min=0)  # [3, 1]
    torch.testing.assert_close(shade, expected[:, :, None, None, None].expand_as(shade), atol=1e-5, rtol=0)

    def ball(xyz: torch.Tensor):  # raw density of a ball of radius 0.3
        return 40 * (0.3 - xyz.norm(dim=-1, keepdim=True)), None

    depth, normal, hit = _sphere_hits(cams, K, 0.3)
    shade = G.lambertian_shade(ball, cams, K, depth, generator=torch.Generator().manual_seed(7))
    cosine = (normal * light[:, None, None]).sum(-1).clamp(min=0)  # [3, 2, 16, 16]
    expected = (0.35 + 0.65 * cosine).unsqueeze(2)
    assert hit.sum() > 100
    torch.testing.assert_close(shade[hit], expected[hit], atol=0.65 * 0.01 / 0.3, rtol=0)
    assert (cosine[hit.squeeze(2)] == 0).any() and (cosine[hit.squeeze(2)] > 0.9).any()  # both sides are seen


def test_shading_multiplies_the_objects_colour_only():
    """Shaded image = (unshaded colour + 1) * shade - 1 on the object, composited over the
    same learned background: the background and the geometry are not shaded."""
    torch.manual_seed(0)
    G_shaded = TriplaneGenerator(small_g(shading=0.5, background="learned"))
    G_plain = TriplaneGenerator(small_g(background="learned"))
    G_plain.load_state_dict(G_shaded.state_dict())
    for G in (G_shaded, G_plain):
        G.renderer.deterministic = True
    z, c = torch.randn(2, 16), torch.tensor([0, 2])
    cams, K = sample_multiview_poses(2, 2, min_angle_deg=0), fov_to_intrinsics(30.0)
    with torch.no_grad():
        shown = G_shaded(z, c, cams, K, noise_mode="const", generator=torch.Generator().manual_seed(3))
        plain = G_plain(z, c, cams, K, noise_mode="const")
        ws = G_plain.mapping(z, c)
        bg = torch.tanh(G_plain.background(ws[:, -1]))[:, None, :, None, None]
        shade = G_shaded.lambertian_shade(G_shaded.field(G_shaded.planes(ws, "const")), cams, K, plain["depth"],
                                          generator=torch.Generator().manual_seed(3))
    behind = (1 - plain["opacity"]) * (bg + 1)
    torch.testing.assert_close(shown["depth"], plain["depth"])
    torch.testing.assert_close(shown["image"], (plain["image"] - behind + 1) * shade - 1 + behind, atol=1e-5, rtol=0)
    assert (shade < 0.99).float().mean() > 0.2
    with pytest.raises(ValueError, match="shading must lie in"):
        TriplaneGenerator(small_g(shading=1.5))


def test_mapping_w_avg_tracks_the_batch_mean():
    torch.manual_seed(1)
    m = MappingNetwork(8, 4, 8, num_ws=5)
    z, c = torch.randn(6, 8), torch.randint(0, 4, (6,))
    w = m(z, c, update_w_avg=True)
    assert w.shape == (6, 5, 8) and torch.equal(w[:, 0], w[:, 4])
    expected_avg = w[:, 0].mean(0) * (1 - m.w_avg_beta)
    torch.testing.assert_close(m.w_avg, expected_avg)
    with pytest.raises(ValueError, match="class labels in"):
        m(z, torch.full((6,), 4))


def test_truncation_moves_w_toward_its_own_class_mean():
    """Class-conditional truncation: the centre of each row is the mean w of its class over
    the fixed latents (recomputed here through the untruncated forward), not w_avg."""
    torch.manual_seed(2)
    m = MappingNetwork(8, 4, 8, num_ws=3)
    m(torch.randn(16, 8), torch.randint(0, 4, (16,)), update_w_avg=True)  # a w_avg that is not any class's mean
    latents = torch.randn(CLASS_MEAN_SAMPLES, 8, generator=torch.Generator().manual_seed(CLASS_MEAN_SEED))
    means = torch.stack([m(latents, torch.full((CLASS_MEAN_SAMPLES,), k))[:, 0].mean(0) for k in range(4)])
    z, c = torch.randn(5, 8), torch.tensor([3, 0, 3, 1, 0])
    w = m(z, c)[:, 0]
    for psi in (0.0, 0.6):
        truncated = m(z, c, truncation_psi=psi)
        assert truncated.shape == (5, 3, 8) and torch.equal(truncated[:, 0], truncated[:, 2])
        torch.testing.assert_close(truncated[:, 0], means[c] + psi * (w - means[c]), rtol=1e-5, atol=1e-6)
    assert (means[0] - m.w_avg).abs().max() > 1e-2 and (means[0] - means[1]).abs().max() > 1e-2
    torch.testing.assert_close(m(z[1:2], c[1:2], truncation_psi=0.3), m(z, c, truncation_psi=0.3)[1:2])
    torch.testing.assert_close(m.mean_w(3), means[3], rtol=1e-5, atol=1e-6)
    assert m(z[:0], c[:0], truncation_psi=0.5).shape == (0, 3, 8)
    for bad in (None, 4, -1):
        with pytest.raises(ValueError, match=r"c must be a class label in \[0, 4\)"):
            m.mean_w(bad)


def test_unconditional_truncation_moves_w_toward_w_avg():
    torch.manual_seed(3)
    m = MappingNetwork(8, 0, 8, num_ws=2)
    z = torch.randn(4, 8)
    m(z, None, update_w_avg=True)
    w = m(z, None)
    torch.testing.assert_close(m(z, None, truncation_psi=0.0), m.w_avg.expand(4, 2, 8))
    torch.testing.assert_close(m(z, None, truncation_psi=0.25), m.w_avg + 0.25 * (w - m.w_avg))


def test_discriminator_has_no_pose_input_and_uses_classes():
    D = Discriminator(DiscriminatorConfig(image_resolution=16, num_classes=3, channel_base=256, channel_max=32))
    assert list(inspect.signature(D.forward).parameters) == ["img", "c", "img_raw", "all_classes"]
    img = torch.randn(4, 3, 16, 16)
    a = D(img, torch.tensor([0, 1, 2, 0]))
    b = D(img, torch.tensor([1, 1, 2, 0]))
    assert a.shape == (4, 1)
    assert (a[0] - b[0]).abs() > 1e-6 and torch.allclose(a[1:], b[1:])
    with pytest.raises(ValueError, match="img must have shape"):
        D(torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="img_raw is only read by a dual"):
        D(img, torch.zeros(4, dtype=torch.long), torch.randn(4, 3, 8, 8))


def test_discriminator_conditioning_is_stylegan2s():
    """StyleGAN2's D: label -> embedding FC -> second-moment normalization -> 8 leaky-ReLU
    FCs (lr multiplier 0.01) -> projection with the epilogue output / sqrt(cmap_dim),
    cmap_dim = the last block's channels. Written out from the parameters in fp64."""
    torch.manual_seed(3)
    D = Discriminator(DiscriminatorConfig(image_resolution=16, num_classes=5, channel_base=256,
                                          channel_max=32)).double()
    assert D.cmap_dim == 32 and len(D.cmap.layers) == 8
    with torch.no_grad():  # non-trivial biases, so their lr multiplier matters
        for p in D.cmap.parameters():
            p.add_(torch.randn_like(p))
    img, c = torch.randn(3, 3, 16, 16, dtype=torch.float64), torch.tensor([4, 0, 2])
    phi = []
    D.out.register_forward_hook(lambda m, inp, out: phi.append(out))
    score = D(img, c)
    x = torch.eye(5, dtype=torch.float64)[c] @ (D.cmap.embed.linear.weight / math.sqrt(5)).T + D.cmap.embed.linear.bias
    x = x / (x.square().mean(dim=1, keepdim=True) + 1e-8).sqrt()
    for layer in D.cmap.layers:
        w, b = layer.linear.weight, layer.linear.bias
        x = F.leaky_relu(x @ (w * 0.01 / math.sqrt(32)).T + b * 0.01, 0.2) * math.sqrt(2)
    torch.testing.assert_close(score, (phi[0] * x).sum(dim=1, keepdim=True) / math.sqrt(32), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("center_input", [True, False])
def test_centred_input_hides_the_mean_colour_from_the_convolutions_only(center_input: bool):
    """With ``center_input`` D's convolutions see each image minus its mean colour, so a
    colour offset per image leaves their features unchanged, and the first FC layer gets
    the mean colour beside them; without it, the offset reaches the features (fp64)."""
    torch.manual_seed(5)
    D = Discriminator(DiscriminatorConfig(image_resolution=16, num_classes=5, channel_base=256, channel_max=32,
                                          center_input=center_input)).double()
    fc_inputs = []
    D.fc.register_forward_pre_hook(lambda m, args: fc_inputs.append(args[0]))
    img = torch.randn(8, 3, 16, 16, dtype=torch.float64)
    shifted = img + torch.randn(8, 3, 1, 1, dtype=torch.float64)
    D(img, all_classes=True), D(shifted, all_classes=True)
    before, after = fc_inputs
    if center_input:
        assert before.shape == (8, 32 * 16 + 3)
        torch.testing.assert_close(after[:, :-3], before[:, :-3], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(before[:, -3:], img.mean(dim=(2, 3)), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(after[:, -3:], shifted.mean(dim=(2, 3)), rtol=1e-12, atol=1e-12)
    else:
        assert before.shape == (8, 32 * 16)
        assert (after - before).abs().max() > 1e-3


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_a_partly_centred_input_removes_that_share_of_the_mean_colour(fraction: float):
    """While training ramps the centring in, D's convolutions see ``img - fraction * mean``:
    their features equal those of a StyleGAN2 D with the same convolution weights shown that
    image, and the mean colour still joins them at the first FC layer (fp64)."""
    torch.manual_seed(6)
    kw = dict(image_resolution=16, num_classes=5, channel_base=256, channel_max=32)
    D = Discriminator(DiscriminatorConfig(**kw, center_input=True)).double()
    plain = Discriminator(DiscriminatorConfig(**kw)).double()
    convs = {k: v for k, v in D.state_dict().items() if not k.startswith(("fc.", "out.", "cmap."))}
    plain.load_state_dict(convs, strict=False)
    fc_inputs = []
    for net in (D, plain):
        net.fc.register_forward_pre_hook(lambda m, args: fc_inputs.append(args[0]))
    img = torch.randn(8, 3, 16, 16, dtype=torch.float64) + torch.randn(8, 3, 1, 1, dtype=torch.float64)
    mean = img.mean(dim=(2, 3))
    D.center_fraction = fraction
    D(img, all_classes=True)
    plain(img - fraction * mean[:, :, None, None], all_classes=True)
    seen, expected = fc_inputs
    torch.testing.assert_close(seen[:, :-3], expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(seen[:, -3:], mean, rtol=1e-12, atol=1e-12)


def _strided_reference(x: torch.Tensor, taps: list[float], pad: tuple[int, int]) -> torch.Tensor:
    """``x`` (each channel) filtered by the normalized outer product of ``taps`` after zero
    padding ``pad`` (before, after) on both axes: a depthwise ``F.conv2d``."""
    k = torch.tensor(taps, dtype=x.dtype)
    k = torch.outer(k, k) / k.sum() ** 2
    C = x.shape[1]
    return F.conv2d(F.pad(x, (pad[0], pad[1], pad[0], pad[1])), k.expand(C, 1, *k.shape), groups=C)


@pytest.mark.parametrize("down_filter,taps,conv_pad,skip_pad", [
    ("fir", [1, 3, 3, 1], (2, 2), (1, 1)),  # StyleGAN2: blur, then the strided conv / every second pixel
    ("box", [1, 1], (1, 1), (0, 0)),  # 2x2 mean
    ("none", [1], (1, 1), (0, 0)),  # a plain stride-2 conv; the skip takes every second pixel
])
def test_discriminator_downsampling_is_the_named_filter_then_a_stride(down_filter, taps, conv_pad, skip_pad):
    """Each D block halves the resolution twice, in its 3x3 conv and its 1x1 skip: the
    input filtered by ``down_filter``'s taps, then the convolution at stride 2. Checked
    against depthwise ``F.conv2d`` filters and strided convolutions (fp64, odd channels)."""
    torch.manual_seed(7)
    D = Discriminator(DiscriminatorConfig(image_resolution=16, num_classes=5, channel_base=112, channel_max=7,
                                          down_filter=down_filter)).double()
    block = D.blocks[0]
    with torch.no_grad():
        block.conv1.bias.normal_()
    x = torch.randn(3, 7, 16, 16, dtype=torch.float64)  # the block's features after fromrgb
    conv_w = block.conv1.weight * block.conv1.weight_gain
    conv_expected = F.leaky_relu(F.conv2d(_strided_reference(x, taps, conv_pad), conv_w, stride=2)
                                 + block.conv1.bias[:, None, None], 0.2)  # gains sqrt 2 * sqrt 1/2
    skip_w = block.skip.weight * block.skip.weight_gain
    skip_expected = F.conv2d(_strided_reference(x, taps, skip_pad)[..., ::2, ::2], skip_w) * math.sqrt(0.5)
    assert conv_expected.shape == skip_expected.shape == (3, 7, 8, 8)
    torch.testing.assert_close(block.conv1(x), conv_expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(block.skip(x), skip_expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="down_filter must be one of"):
        Discriminator(DiscriminatorConfig(image_resolution=16, down_filter="blur"))


def test_all_class_scores_are_the_per_label_scores():
    """Column k of ``all_classes=True`` is ``D(img, k)`` (fp64, a dual D, one pass)."""
    torch.manual_seed(4)
    D = Discriminator(DiscriminatorConfig(image_resolution=16, num_classes=5, channel_base=256, channel_max=32,
                                          dual=True)).double()
    img, raw = torch.randn(4, 3, 16, 16, dtype=torch.float64), torch.randn(4, 3, 8, 8, dtype=torch.float64)
    scores = D(img, img_raw=raw, all_classes=True)
    assert scores.shape == (4, 5)
    for k in range(5):
        torch.testing.assert_close(scores[:, k:k + 1], D(img, torch.full((4,), k), raw), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="give either c or all_classes"):
        D(img, torch.zeros(4, dtype=torch.long), raw, all_classes=True)
    unconditional = Discriminator(DiscriminatorConfig(image_resolution=16, channel_base=256, channel_max=32))
    with pytest.raises(ValueError, match="all_classes needs a class-conditional"):
        unconditional(img.float(), all_classes=True)


def test_dual_discriminator_reads_image_and_resized_raw_rendering():
    torch.manual_seed(4)
    D = Discriminator(DiscriminatorConfig(image_resolution=16, num_classes=3, channel_base=256, channel_max=32,
                                          dual=True)).double()
    assert D.blocks[0].fromrgb.weight.shape[1] == 6
    img, raw, c = (torch.randn(2, 3, 16, 16, dtype=torch.float64), torch.randn(2, 3, 8, 8, dtype=torch.float64),
                   torch.tensor([0, 2]))
    # The raw rendering is resized to the image resolution (bilinear, EG3D's filtered resize).
    upsampled = F.interpolate(raw, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(D(img, c, raw), D(img, c, upsampled), rtol=1e-12, atol=1e-12)
    assert (D(img, c, raw) - D(img, c, raw + 1)).abs().min() > 1e-6
    with pytest.raises(ValueError, match="dual discriminator needs img_raw"):
        D(img, c)


def test_superresolution_path_shapes():
    G = TriplaneGenerator(small_g(superresolution=True, image_resolution=32, neural_rendering_resolution=16,
                                  sr_channels=16))
    out = G(torch.randn(1, 16), torch.tensor([2]), sample_multiview_poses(1, 2, min_angle_deg=0),
            fov_to_intrinsics(30.0))
    assert out["image"].shape == (1, 2, 3, 32, 32) and out["image_raw"].shape == (1, 2, 3, 16, 16)


@pytest.mark.parametrize("name", ["tiny", "shapenet", "imagenet", "eg3d", "eg3d+d", "eg3d+g+d", "eg3d+g+d+mv",
                                  "tiny-eg3d", "tiny-eg3d+d", "tiny-eg3d+g+d", "tiny-eg3d+g+d+mv"])
def test_every_preset_builds(name):
    from tri3d.runs.config import preset

    cfg = preset(name)
    cfg.G.num_classes = cfg.D.num_classes = 10
    cfg.validate()
    with torch.device("meta"):  # shapes only, no memory
        G, D = TriplaneGenerator(cfg.G), Discriminator(cfg.D)
    assert G.config.image_resolution == D.config.image_resolution
    if "eg3d" in name:  # the ablation rows: EG3D, +d, +g+d, +g+d+multi-view
        assert G.config.extra_blocks == ("+g" in name) and G.config.decoder_layers == (3 if "+d" in name else 1)
        assert cfg.views == ((2 if name.startswith("tiny") else 3) if "+mv" in name else 1)
    if name.startswith("tiny-"):  # the tiny rows differ from tiny only in the ablated options, and
        # train every row's views from the start, as the paper does (tiny: one view until 20 kimg)
        assert cfg.multiview_start_kimg == 0.0
        ref = preset("tiny")
        ref.G.num_classes = ref.D.num_classes = 10
        ref.preset, ref.G.extra_blocks, ref.G.decoder_layers, ref.views = (name, cfg.G.extra_blocks,
                                                                           cfg.G.decoder_layers, cfg.views)
        ref.multiview_start_kimg = 0.0
        assert ref.to_dict() == cfg.to_dict()
    assert D.config.dual == G.config.superresolution  # EG3D: a super-resolving G meets a dual D


def test_superresolution_follows_a_faded_neural_resolution():
    G = TriplaneGenerator(small_g(superresolution=True, image_resolution=32, neural_rendering_resolution=16,
                                  sr_channels=16))
    out = G(torch.randn(1, 16), torch.tensor([0]), sample_multiview_poses(1, 1, min_angle_deg=0),
            fov_to_intrinsics(30.0), neural_rendering_resolution=8)
    assert out["image"].shape == (1, 1, 3, 32, 32) and out["depth"].shape[-1] == 8
