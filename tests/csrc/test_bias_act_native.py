"""The C++ bias_act path (csrc/bias_act_cpu.cpp) against the reference chain of torch ops."""
from __future__ import annotations

import pytest
import torch

from tri3d.models.layers import Conv2dLayer
from tri3d.ops import modulated_conv2d, modulated_conv2d_ref
from tri3d.ops.bias_act import bias_lrelu, bias_lrelu_ref
from tri3d.testing import FLOORS, SYNTHESIS_LAYER_RESULTS, assert_fused_close, synthesis_layer_case

# (shape, memory layout): [N, C] rows, NCHW and channels-last maps, sizes that are not
# multiples of the vector width, and one above the 16384-element block of the C++ loops.
CASES = [
    ((5, 37), "contiguous"),
    ((3, 5, 7, 9), "contiguous"),
    ((3, 5, 7, 9), "channels_last"),
    ((3, 37, 19, 23), "contiguous"),
    ((3, 37, 19, 23), "channels_last"),
]
# (bias, linear, gain, clamp): the epilogues StyleGAN2's layers use, and odd ones.
OPTIONS = [
    (True, False, 2 ** 0.5, None),
    (True, False, 2 ** 0.5, 0.8),
    (True, True, 1.0, 0.8),
    (False, False, 2 ** 0.5, None),
    (False, True, 0.37, 0.5),
    (True, False, 1.0, None),
]


def make(shape, layout, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    b = torch.randn(shape[1], generator=g, dtype=torch.float64).to(dtype)
    return x, b


def run(impl, x, b, cot, **kw):
    """Output and the gradients of ``sum(out * cot)`` for x and b (cot drawn once, cast)."""
    x = x.detach().requires_grad_()
    b = None if b is None else b.detach().requires_grad_()
    out = bias_lrelu(x, b, impl=impl, **kw)
    inputs = [x] if b is None else [x, b]
    return [out, *torch.autograd.grad(out, inputs, cot.to(out.dtype))]


@pytest.mark.parametrize("shape,layout", CASES)
@pytest.mark.parametrize("bias,linear,gain,clamp", OPTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_x_gradient_are_the_reference_bits(native_ext, shape, layout, bias, linear, gain, clamp, dtype):
    """Both round each operation as the reference does (and the clamp saturates some
    values): the output and x's gradient are equal bit for bit; the output keeps x's layout."""
    x, b = make(shape, layout, seed=len(shape) + 7 * (clamp is not None), dtype=dtype)
    b = b if bias else None
    cot = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    kw = dict(gain=gain, clamp=clamp, linear=linear)
    ref, cpp = run("ref", x, b, cot, **kw), run("cpp", x, b, cot, **kw)
    if clamp is not None:
        assert (ref[0].abs() == clamp).any() and (ref[0].abs() < clamp).any()
    assert cpp[0].dtype == dtype and cpp[0].stride() == x.stride()
    assert torch.equal(cpp[0], ref[0]), "output"
    assert torch.equal(cpp[1], ref[1]), "x gradient"


@pytest.mark.parametrize("shape,layout", CASES)
def test_bias_gradient_matches_fp64_reference(native_ext, shape, layout):
    x, b = make(shape, layout, seed=11)
    cot = torch.randn(shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    kw = dict(clamp=0.9)
    ref64 = run("ref", x.double(), b.double(), cot, **kw)
    ref32, cpp = run("ref", x, b, cot, **kw), run("cpp", x, b, cot, **kw)
    assert_fused_close(cpp[2], ref32[2], ref64[2], FLOORS["fp32"], "bias gradient")


def test_gradient_in_another_layout_than_the_output(native_ext):
    """An NCHW incoming gradient for a channels-last output is read by position, not memory order."""
    x, b = make((2, 6, 5, 4), "channels_last", seed=5)
    cot = torch.randn(2, 6, 5, 4, generator=torch.Generator().manual_seed(6))
    assert cot.is_contiguous() and not x.is_contiguous()
    ref, cpp = run("ref", x, b, cot), run("cpp", x, b, cot)
    assert torch.equal(cpp[1], ref[1])


def test_fp64_gradcheck_and_gradgradcheck(native_ext):
    """Away from the kinks (|x + b| > 0.05, the clamp not hit exactly) the C++ path's first
    and second derivatives are the finite differences'. The second is what R1 needs."""
    x, b = make((2, 3, 4, 5), "channels_last", seed=8, dtype=torch.float64)
    x = torch.where((x + b[:, None, None]).abs() < 0.05, x + 0.1, x)

    def f(x, b):
        return bias_lrelu(x, b, clamp=1.5, impl="cpp")

    inputs = (x.requires_grad_(), b.requires_grad_())
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_r1_penalty_gradient_matches_the_reference(native_ext, monkeypatch):
    """R1 through two of D's layers: the penalty's gradient for every parameter
    (a double backward through the activation) is the reference's."""
    torch.manual_seed(0)
    layers = torch.nn.Sequential(Conv2dLayer(3, 8, 3, conv_clamp=256), Conv2dLayer(8, 4, 3, conv_clamp=256))
    real = torch.randn(2, 3, 9, 7)
    results = {}
    for impl in ("ref", "auto"):
        monkeypatch.setenv("TRI3D_IMPL", impl)
        img = real.detach().requires_grad_()
        (grad_img,) = torch.autograd.grad(layers(img).square().sum(), img, create_graph=True)
        penalty = grad_img.square().sum()
        results[impl] = torch.autograd.grad(penalty, list(layers.parameters()))
    for name, a, r in zip([n for n, _ in layers.named_parameters()], results["auto"], results["ref"]):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("shape,layout", [((0, 4), "contiguous"), ((0, 4, 3, 3), "channels_last"),
                                          ((3, 0), "contiguous"), ((2, 4, 0, 3), "contiguous")])
def test_empty_inputs_give_what_the_reference_gives(native_ext, shape, layout):
    x, b = make(shape, layout, seed=0)
    cot = torch.randn(shape, dtype=torch.float64)
    for a, r in zip(run("cpp", x, b, cot, clamp=1.0), run("ref", x, b, cot, clamp=1.0)):
        assert a.shape == r.shape and torch.equal(a, r)


def test_nan_propagates_as_in_the_reference(native_ext):
    x, b = make((1, 3, 2, 2), "contiguous", seed=2)
    x[0, 1, 1, 0] = float("nan")
    out = bias_lrelu(x, b, clamp=0.5, impl="cpp")
    assert torch.equal(out.isnan(), bias_lrelu_ref(x, b, clamp=0.5).isnan()) and out.isnan().sum() == 1


def test_a_strided_bias_is_read_by_position(native_ext):
    x, _ = make((2, 4, 3, 3), "channels_last", seed=12)
    b = torch.randn(4, 2, generator=torch.Generator().manual_seed(13))[:, 1]  # stride 2
    assert not b.is_contiguous()
    assert torch.equal(bias_lrelu(x, b, impl="cpp"), bias_lrelu_ref(x, b))


def test_dispatch_and_argument_errors(native_ext, monkeypatch):
    x, b = make((2, 4, 3, 3), "contiguous", seed=1)
    calls = []
    monkeypatch.setattr("tri3d.ops.bias_act.bias_lrelu_ref", lambda *a, **k: calls.append(1) or bias_lrelu_ref(*a, **k))
    bias_lrelu(x, b)  # auto on fp32 CPU tensors: the C++ path
    assert calls == []
    half = bias_lrelu(x.bfloat16(), b)  # a dtype the C++ path does not compute: the reference
    assert calls == [1] and half.dtype == torch.bfloat16
    monkeypatch.setenv("TRI3D_IMPL", "ref")
    bias_lrelu(x, b)
    assert calls == [1, 1]
    with pytest.raises(ValueError, match="float32 / float64, got torch.bfloat16"):
        bias_lrelu(x.bfloat16(), b, impl="cpp")
    with pytest.raises(ValueError, match="gain > 0"):
        bias_lrelu(x, b, gain=-1.0, impl="cpp")
    with pytest.raises(ValueError, match="clamp must be > 0"):
        bias_lrelu(x, b, clamp=0.0)
    with pytest.raises(RuntimeError, match="CPU tensors"):
        bias_lrelu(x.to("meta"), b.to("meta"), impl="cpp")


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv2d_cpp_path_is_the_reference_with_the_cpp_epilogue(native_ext, up):
    """``modulated_conv2d``'s C++ path (auto on the CPU): the reference's output bits and
    gradients within the tolerance rule (the bias gradient is summed in another order)."""
    ref64 = synthesis_layer_case(modulated_conv2d_ref, up, torch.float64)
    ref32 = synthesis_layer_case(modulated_conv2d_ref, up, torch.float32)
    cpp = synthesis_layer_case(modulated_conv2d, up, torch.float32, impl="cpp")
    assert torch.equal(cpp[0], ref32[0])
    for name, a, r, r64 in zip(SYNTHESIS_LAYER_RESULTS, cpp, ref32, ref64):
        assert_fused_close(a, r, r64, FLOORS["fp32"], name)

