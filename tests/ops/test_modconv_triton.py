"""Fused Triton modulated convolution vs the fp64 reference (interpreter on CPU, real on CUDA).

Forward and the gradients w.r.t. input, weight, styles, bias and noise strength are
checked with random cotangents against the DESIGN.md tolerance rule, at channel counts
and image sizes that are not multiples of the kernels' blocks.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tri3d import _backend
from tri3d.ops import modulated_conv2d, modulated_conv2d_ref
from tri3d.ops.bias_act import LRELU_ALPHA, LRELU_GAIN
from tri3d.ops.modconv import demodulation
from tri3d.testing import (
    FLOORS, assert_fused_close, launch_mutant, relative_error, tf32_conv2d, tf32_truncate, truncate_mantissa,
)

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

NAMES = ("y", "grad x", "grad weight", "grad styles", "grad bias", "grad noise_strength")


def make_case(*, N=2, I=37, O=45, H=5, W=7, k=3, demodulate=True, noise="sample", activation="lrelu", clamp=1.0,
              seed=0):
    g = torch.Generator().manual_seed(seed)
    styles = torch.randn(N, I, generator=g) * 0.5 + 1.0
    if not demodulate:  # ToRGB scales its styles by 1 / sqrt(I)
        styles = styles / I**0.5
    nz = {"sample": N, "shared": 1, None: 0}[noise]
    return dict(
        x=torch.randn(N, I, H, W, generator=g),
        weight=torch.randn(O, I, k, k, generator=g),
        styles=styles,
        bias=torch.randn(O, generator=g) * 0.3,
        noise=torch.randn(nz, 1, H, W, generator=g) if nz else None,
        noise_strength=torch.tensor(0.4),
        cotangent=torch.randn(N, O, H, W, generator=g),
        options=dict(demodulate=demodulate, activation=activation, clamp=clamp),
    )


def run(case, *, dtype, device, impl, param_dtype=torch.float32, **kw):
    """Output and gradients w.r.t. x, weight, styles, bias and noise strength."""
    x = case["x"].to(device, dtype).requires_grad_()
    params = [case[n].to(device, param_dtype).requires_grad_() for n in ("weight", "styles", "bias", "noise_strength")]
    weight, styles, bias, ns = params
    noise = case["noise"].to(device, param_dtype) if case["noise"] is not None else None
    y = modulated_conv2d(x, weight, styles, bias=bias, noise=noise, noise_strength=ns if noise is not None else None,
                         impl=impl, **case["options"], **kw)
    loss = (y.to(param_dtype) * case["cotangent"].to(device, param_dtype)).sum()
    grads = torch.autograd.grad(loss, [x, *params], allow_unused=True)
    out = [y, *grads]
    if noise is None:
        out[-1] = torch.zeros_like(ns)  # no noise: the strength gets no gradient on either path
    return out


@triton.jit
def _store_kernel(x_ptr, y_ptr, n):  # one fp32 -> activation-dtype store, as the kernels store
    offs = tl.arange(0, 16)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n).to(y_ptr.dtype.element_ty), mask=offs < n)


def in_dtype(case, dtype):
    """``case`` with its input and cotangent representable in ``dtype``: the numbers every
    path gets (the fp64 reference included, so no leaky-ReLU branch differs by the cast)."""
    return case | {n: case[n].to(dtype).float() for n in ("x", "cotangent")}


def kernel_store_rounding(device, dtype):
    """How the kernels' fp32 -> ``dtype`` stores round on ``device``, measured: a function
    rounding fp32 tensors the same way. To nearest on a GPU; Triton's interpreter (3.9 at
    least) drops a bf16's low 16 bits instead."""
    x = torch.tensor([1 + 2**-8 + 2**-12, -(1 + 2**-8 + 2**-12)])  # past halfway (bf16's step at 1 is 2^-7)
    y = torch.empty(2, dtype=dtype, device=device)
    _store_kernel[(1,)](x.to(device), y, 2)
    if torch.equal(y.cpu(), x.to(dtype)):
        return lambda t: t.to(dtype).float()
    assert dtype == torch.bfloat16 and y.abs().float().eq(1).all(), y  # truncated
    return lambda t: truncate_mantissa(t, 7)


def half_operand_reference(case, dtype, store_rounding):
    """What the fused path computes with 16-bit (``dtype``) activations, written out in fp32
    with its roundings and nothing else (DESIGN.md, Tolerances: the same-precision reference
    does what the fused path does except the fusion): dot operands rounded to ``dtype`` to
    nearest (the input, the weight, weight x styles and weight x demodulation as the kernels
    form them), fp32 sums, fp32 epilogue; the output, the gradient at the pre-activation and
    the input gradient stored in ``dtype`` as the kernels store (``store_rounding``); the
    incoming gradient in ``dtype``; the bias, noise-strength, weight and style gradients
    summed in fp32 (the first two from the unrounded gradient at the pre-activation, the
    last two from the fp32 weight). The reference path run in ``dtype`` instead rounds every
    intermediate to 16 bits: its error against fp64 was up to 6x the fused path's (a bound
    too loose to see a wrong secondary term), and on one case's noise-strength gradient 6x
    below it."""
    def rt(t):  # a rounding to nearest (torch's casts, the dots' operands)
        return t.to(dtype).float()

    r = store_rounding
    opts = case["options"]
    x, w, s = rt(case["x"]), case["weight"].float(), case["styles"].float()
    N, O, k = x.shape[0], w.shape[0], w.shape[-1]
    pad, w_op = k // 2, rt(w)
    d = demodulation(w, s) if opts["demodulate"] else torch.ones(N, O)
    alpha = LRELU_ALPHA if opts["activation"] == "lrelu" else 1.0
    gain = LRELU_GAIN if opts["activation"] == "lrelu" else 1.0
    clamp = math.inf if opts["clamp"] is None else opts["clamp"]
    noise, ns = case["noise"], case["noise_strength"].float()
    z = torch.cat([F.conv2d(x[n:n + 1], rt(w_op * s[n, None, :, None, None]), padding=pad) for n in range(N)])
    z = z * d[:, :, None, None] + case["bias"][None, :, None, None]
    if noise is not None:
        z = z + noise * ns
    y = r((torch.where(z > 0, z, z * alpha) * gain).clamp(-clamp, clamp))
    gz32 = rt(case["cotangent"]) * gain * torch.where(y > 0, 1.0, alpha) * (y.abs() < clamp)
    gz = r(gz32)  # stored for the dgrad and wgrad kernels; the bias and noise sums read gz32
    g_x = torch.cat([F.conv_transpose2d(gz[n:n + 1], rt(w_op * d[n, :, None, None, None]), padding=pad)
                     for n in range(N)])
    g_x = r(g_x * s[:, :, None, None])
    g_w, g_s, g_d = torch.zeros_like(w), torch.zeros_like(s), torch.zeros(N, O)
    for n in range(N):
        acc = torch.nn.grad.conv2d_weight(x[n:n + 1], w.shape, gz[n:n + 1], padding=pad)  # [O, I, k, k]
        sr = acc * s[n, None, :, None, None]
        g_d[n] = (sr * w).sum(dim=(1, 2, 3))
        g_s[n] = (acc * w * d[n, :, None, None, None]).sum(dim=(0, 2, 3))
        g_w += sr * d[n, :, None, None, None]
    if opts["demodulate"]:  # through the coefficients, in fp32 as the fused path's wrapper does
        w_, s_ = w.clone().requires_grad_(), s.clone().requires_grad_()
        via_w, via_s = torch.autograd.grad(demodulation(w_, s_), (w_, s_), g_d)
        g_w, g_s = g_w + via_w, g_s + via_s
    g_ns = (gz32 * noise).sum().reshape(ns.shape) if noise is not None else torch.zeros_like(ns)
    return [y, g_x, g_w, g_s, gz32.sum(dim=(0, 2, 3)), g_ns]


def compare(case, device, *, dtype=torch.float32, floor_key="fp32", ref_same=None, **kw):
    """Fused vs fp64 ref under the tolerance rule; ``ref_same`` (default: the ref path in
    fp32, ``half_operand_reference`` for 16-bit activations) is the same-precision
    reference's outputs and gradients."""
    if dtype == torch.float32:
        kw.setdefault("precision", "ieee")  # on CUDA the default would follow cudnn.allow_tf32
    else:
        case = in_dtype(case, dtype)
    ref64 = run(case, dtype=torch.float64, param_dtype=torch.float64, device="cpu", impl="ref")
    if ref_same is None:
        ref_same = run(case, dtype=dtype, device="cpu", impl="ref") if dtype == torch.float32 else (
            half_operand_reference(case, dtype, kernel_store_rounding(device, dtype)))
    fused = run(case, dtype=dtype, device=device, impl="triton", **kw)
    for name, f, r, r64 in zip(NAMES, fused, ref_same, ref64):
        assert_fused_close(f.cpu().float(), r.float(), r64, FLOORS[floor_key], name)
        if dtype != torch.float32:
            e = relative_error(f.cpu().float(), r.float())
            tol = EMULATION_TOL[name] * torch.finfo(dtype).eps
            if e > tol:
                raise AssertionError(f"{name}: fused error against the same-precision emulation {e:.3g} > {tol:.3g}")
    return fused


# With 16-bit activations the fused path and ``half_operand_reference`` round the same
# numbers the same way, so they differ only by the order of fp32 additions: where that
# moves a 16-bit store (the output, the input gradient) past a rounding boundary, by one
# unit in the last place of that element (eps of it at most); the weight, style, bias and
# noise-strength gradients are fp32 sums of identical 16-bit operands (rounding of the
# order, ~1e-6). In units of the dtype's eps (bf16 2^-7, fp16 2^-10), relative to the
# output's largest element. The fp64 rule's bound at bf16 is 2e-2 or twice the reference's
# own 0.7-6% error: wide enough for a gradient written 1.1x too large to pass; this is not.
EMULATION_TOL = {"y": 2.0, "grad x": 2.0, "grad weight": 0.1, "grad styles": 0.1, "grad bias": 0.1,
                 "grad noise_strength": 0.1}


@pytest.mark.parametrize("noise", ["sample", "shared", None])
def test_synthesis_layer_fp32(device, noise):
    case = make_case(noise=noise, seed=1)
    fused = compare(case, device)
    assert fused[0].is_contiguous(memory_format=torch.channels_last)
    y64 = fused[0].double()
    assert (y64.abs() <= 1.0).all() and (y64.abs() == 1.0).any()  # the clamp was active


def test_torgb_fp32_k1_linear_no_demodulation(device):
    compare(make_case(k=1, demodulate=False, noise=None, activation="linear", clamp=4.0, O=11, seed=2), device)


def test_several_blocks_per_dimension(device):
    # I = 70 and O = 67 span three 32-wide and two 64-wide blocks; 9 x 11 pixels > one 64-pixel block
    compare(make_case(N=3, I=70, O=67, H=9, W=11, clamp=None, seed=3), device)


def test_bf16_activations(device):
    compare(make_case(seed=4), device, dtype=torch.bfloat16, floor_key="bf16")


@pytest.mark.parametrize("layer", [True, False])
def test_half_operand_reference_without_rounding_is_the_reference(layer):
    """``half_operand_reference``'s formulas (forward and hand-written backward) with every
    rounding an identity agree with autograd through the fp64 reference path."""
    case = make_case(noise="sample", seed=1) if layer else make_case(
        k=1, demodulate=False, noise=None, activation="linear", clamp=4.0, O=11, seed=2)
    ref64 = run(case, dtype=torch.float64, param_dtype=torch.float64, device="cpu", impl="ref")
    written_out = half_operand_reference(case, torch.float32, lambda t: t)
    for name, w, r in zip(NAMES, written_out, ref64):
        assert relative_error(w, r) < 1e-5, name


def test_half_operand_reference_rounds_where_the_kernels_round(interpreter_device):
    """With bf16 activations under the interpreter the fused path and its same-precision
    reference agree far inside their common error against fp64 (2e-5 against 0.7-6%): the
    reference rounds where the kernels round, so the comparison's bound is the fused path's
    own rounding error, and the truncating stores (``kernel_store_rounding``) are modelled."""
    dtype = torch.bfloat16
    case = in_dtype(make_case(noise="sample", clamp=None, seed=1), dtype)
    fused = run(case, dtype=dtype, device=interpreter_device, impl="triton")
    ref = half_operand_reference(case, dtype, kernel_store_rounding(interpreter_device, dtype))
    for name, f, r in zip(NAMES, fused, ref):
        assert relative_error(f.float(), r) < 1e-4, name


def test_fp16_activations(device):
    compare(make_case(seed=5, clamp=None), device, dtype=torch.float16, floor_key="fp16")


def test_tf32_operands(device, monkeypatch):
    """tf32 dots (tensor cores on CUDA; truncated operands under the interpreter) against the
    reference whose convolutions are tf32 products too (DESIGN.md, Tolerances): against the
    fp32 reference the truncation alone is 2.4e-3 here, over the tf32 floor."""
    case = make_case(seed=6)
    with monkeypatch.context() as m:
        m.setattr(F, "conv2d", lambda x, w, padding=0: tf32_conv2d(x, w, padding))
        ref_same = run(case, dtype=torch.float32, device="cpu", impl="ref")
    compare(case, device, floor_key="tf32", ref_same=ref_same, precision="tf32")


def test_tf32_conv2d_is_the_convolution_of_truncated_operands():
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(2, 5, 7, 9, generator=g), torch.randn(4, 5, 3, 3, generator=g)
    exact = F.conv2d(tf32_truncate(x).double(), tf32_truncate(w).double(), padding=1)
    torch.testing.assert_close(tf32_conv2d(x, w, 1).double(), exact, rtol=1e-6, atol=1e-6)
    assert (tf32_conv2d(x, w, 1) - F.conv2d(x, w, padding=1)).abs().max() > 1e-3  # it does truncate


def test_runs_in_the_autocast_dtype(device):
    case = make_case(seed=7, clamp=None)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        fused = run(case, dtype=torch.float32, device=device, impl="triton")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_same = run(case, dtype=torch.float32, device="cpu", impl="ref")
    ref64 = run(case, dtype=torch.float64, param_dtype=torch.float64, device="cpu", impl="ref")
    assert fused[0].dtype == ref_same[0].dtype == torch.bfloat16  # activations stay in the autocast dtype
    assert fused[1].dtype == torch.float32  # the gradient arrives in x's own dtype
    for name, f, r, r64 in zip(NAMES, fused, ref_same, ref64):
        assert_fused_close(f.cpu().float(), r.float(), r64, FLOORS["bf16"], name)


def test_reference_epilogue_gradcheck():
    case = make_case(N=2, I=3, O=4, H=4, W=3, seed=8)
    d = {k: (v.double().requires_grad_() if k != "noise" else v.double()) for k, v in case.items()
         if isinstance(v, torch.Tensor) and k != "cotangent"}

    def f(x, weight, styles, bias, ns):
        return modulated_conv2d_ref(x, weight, styles, bias=bias, noise=d["noise"], noise_strength=ns,
                                    activation="lrelu", clamp=None)

    assert torch.autograd.gradcheck(f, (d["x"], d["weight"], d["styles"], d["bias"], d["noise_strength"]))


def test_dispatch_and_argument_errors(device, monkeypatch):
    case = make_case()
    x, w, s = case["x"].to(device), case["weight"].to(device), case["styles"].to(device)
    if device.type == "cpu":
        assert torch.equal(modulated_conv2d(x, w, s), modulated_conv2d_ref(x, w, s))  # auto on CPU: the reference
    with pytest.raises(RuntimeError, match="up=1 only"):
        modulated_conv2d(x, w, s, up=2, impl="triton")
    with pytest.raises(RuntimeError, match="padding"):
        modulated_conv2d(x, w, s, padding=0, impl="triton")
    with pytest.raises(RuntimeError, match="float64"):
        modulated_conv2d(x.double(), w.double(), s.double(), impl="triton")
    noise = case["noise"].to(device)
    with pytest.raises(ValueError, match="noise requires grad"):
        modulated_conv2d(x, w, s, noise=noise.requires_grad_(), noise_strength=torch.tensor(1.0), impl="triton")
    with pytest.raises(ValueError, match="noise must have shape"):
        modulated_conv2d(x, w, s, noise=noise[..., :3].detach(), noise_strength=torch.tensor(1.0))
    with pytest.raises(ValueError, match="noise needs noise_strength"):
        modulated_conv2d(x, w, s, noise=noise.detach())
    with pytest.raises(ValueError, match="precision must be one of"):
        modulated_conv2d(x, w, s, precision="fp8", impl="triton")
    with pytest.raises(ValueError, match="activation must be one of"):
        modulated_conv2d(x, w, s, activation="relu")


def test_custom_op_checks_and_compiles_without_graph_break(device):
    case = make_case(N=2, I=20, O=18, H=4, W=5)
    x = case["x"].to(device).permute(0, 2, 3, 1).contiguous().requires_grad_()
    w = case["weight"].to(device).permute(2, 3, 1, 0).reshape(9, 20, 18).contiguous().requires_grad_()
    s = case["styles"].to(device).requires_grad_()
    d = torch.rand(2, 18, device=device).add_(0.5).requires_grad_()
    b = case["bias"].to(device).requires_grad_()
    noise = case["noise"].to(device)[:, 0].contiguous()
    ns = torch.tensor([0.4], device=device, requires_grad=True)
    args = (x, w, s, d, b, noise, ns, 3, 1, 0.2, 2**0.5, 1.0, "ieee")
    torch.library.opcheck(torch.ops.tri3d.modconv_fwd.default, args)

    weight, styles = (case[n].to(device).requires_grad_() for n in ("weight", "styles"))
    xin = case["x"].to(device)

    def layer(x):
        return modulated_conv2d(x, weight, styles, activation="lrelu", clamp=1.0, impl="triton")

    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    y_c = compiled(xin)
    g_c = torch.autograd.grad(y_c.square().sum(), [weight, styles])
    y_e = layer(xin)
    g_e = torch.autograd.grad(y_e.square().sum(), [weight, styles])
    torch.testing.assert_close((y_c, *g_c), (y_e, *g_e))


@pytest.mark.parametrize("seed", range(6))
def test_random_shapes(device, seed):
    # random layer shapes, kernel sizes 1/3/5, with or without demodulation, noise and clamp
    g = torch.Generator().manual_seed(100 + seed)

    def pick(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    k = (1, 3, 5)[pick(0, 2)]
    demodulate = bool(pick(0, 1))
    case = make_case(N=pick(1, 3), I=pick(1, 70), O=pick(1, 70), H=pick(1, 10), W=pick(1, 10), k=k,
                     demodulate=demodulate, noise=(None, "sample", "shared")[pick(0, 2)],
                     activation="lrelu" if demodulate else "linear", clamp=(None, 1.0)[pick(0, 1)], seed=seed)
    compare(case, device)


def test_auto_leaves_modulated_convolutions_to_cudnn(device, monkeypatch):
    """Measured slower than cuDNN on an H100, the fused kernel runs only when asked for by
    name; auto says why, for every dtype and TF32 setting."""
    from tri3d.ops.modconv import AUTO_DECLINED, _triton_reason

    x, w = torch.zeros(1, 4, 3, 3), torch.zeros(5, 4, 3, 3)
    cuda = torch.device("cuda")  # the probe only reads the device type: no GPU needed
    for allow_tf32 in (True, False):
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", allow_tf32)
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            assert _triton_reason(x.to(dtype), w, 1, None, explicit=False)(cuda) == AUTO_DECLINED
            assert _triton_reason(x.to(dtype), w, 1, None, explicit=True)(cuda) is None
    assert "up=1" in _triton_reason(x, w, 2, None, explicit=False)(cuda)
    assert "CUDA tensors" in _triton_reason(x, w, 1, None, explicit=False)(torch.device("cpu"))
    from tri3d.ops import modconv

    calls = []
    torch_path = modconv._modulated_conv2d_torch
    monkeypatch.setattr(modconv, "_modulated_conv2d_torch",
                        lambda *a, **k: calls.append(k["epilogue_impl"]) or torch_path(*a, **k))
    modulated_conv2d(x.to(device), w.to(device), torch.ones(1, 4, device=device))
    # torch's convolutions: the C++ epilogue on the CPU (when built), the reference on CUDA
    assert calls == ["auto" if device.type == "cpu" and _backend.cpp_unavailable(device) is None else "ref"]


def test_nan_propagates_through_the_clamped_epilogue(device):
    """A NaN input pixel gives NaN outputs where its receptive field reaches, as on the
    reference (``torch.clamp`` keeps NaN); a clamp built from max/min would turn it to +-clamp."""
    case = make_case(N=1, I=5, O=6, H=4, W=4, clamp=0.5)
    x = case["x"].clone()
    x[0, 2, 1, 1] = float("nan")
    kw = dict(bias=case["bias"], **case["options"])
    ref = modulated_conv2d(x, case["weight"], case["styles"], impl="ref", **kw)
    fused = modulated_conv2d(x.to(device), case["weight"].to(device), case["styles"].to(device), impl="triton",
                             precision="ieee", **{**kw, "bias": case["bias"].to(device)})
    assert ref.isnan().any() and not ref.isnan().all()
    assert torch.equal(fused.cpu().isnan(), ref.isnan())


# One line of the kernels made wrong each: (text in kernels/modconv.py, its replacement, the
# first output ``compare`` must then reject, the case: "layer" a synthesis layer with
# demodulation, per-sample noise and an active clamp, "torgb" a 1 x 1 ToRGB without them).
# Each must fail the comparison at exact fp32, and the scaled ones with bf16 activations too,
# scaled by 1.1 instead of 1.5 there (``BF16_SCALE``; without the clamp, whose mask flips
# with y's rounding and makes the fp64 errors of both paths 2-3x larger). At 1.1x the fp64
# rule alone (bound 2e-2 or twice the reference's 0.7-6% error) lets most of them pass; the
# check against the same-precision emulation (``EMULATION_TOL``) does not.
MUTANTS = {
    "activation slope x1.5": ("gz = gy * gain * tl.where(", "gz = 1.5 * gy * gain * tl.where(", "grad x", "layer"),
    "clamp passes its bound's gradient": ("gz = tl.where(tl.abs(y) < clamp, gz, 0.0)",
                                          "gz = tl.where(tl.abs(y) <= clamp, gz, 0.0)", "grad x", "layer"),
    "bias gradient x1.5": ("tl.store(gb_part_ptr + pid_m * O + offs_o, tl.sum(gz, axis=0)",
                           "tl.store(gb_part_ptr + pid_m * O + offs_o, 1.5 * tl.sum(gz, axis=0)", "grad bias", "layer"),
    "noise strength gradient x1.5": ("tl.sum(gz * nz[:, None])", "1.5 * tl.sum(gz * nz[:, None])",
                                     "grad noise_strength", "layer"),
    "input gradient x1.5": ("acc += dot(gt, wt, PRECISION)", "acc += 1.5 * dot(gt, wt, PRECISION)", "grad x", "layer"),
    "input gradient without the styles": (
        "acc = acc * tl.load(s_ptr + n * I + offs_i, mask=i_mask, other=0.0)[None, :]", "", "grad x", "layer"),
    "input gradient without the demodulation": ("wt = wt * tl.load(d_ptr", "wt = wt + 0 * tl.load(d_ptr", "grad x",
                                                "layer"),
    "input gradient's tap mirrored": ("dst_c = col - tap % KS + PAD", "dst_c = col + tap % KS - PAD", "grad x",
                                      "layer"),
    "demodulation gradient x1.5": ("tl.sum(sr * wt, axis=1)", "1.5 * tl.sum(sr * wt, axis=1)", "grad weight", "layer"),
    "style gradient x1.5": ("tl.sum(acc * wt * dc[:, None], axis=0)", "1.5 * tl.sum(acc * wt * dc[:, None], axis=0)",
                            "grad styles", "layer"),
    "weight gradient x1.5": ("sr * dc[:, None], mask=tile_mask", "1.5 * sr * dc[:, None], mask=tile_mask",
                             "grad weight", "layer"),
    "weight gradient's tap mirrored": ("src_c = offs_m % W + tap % KS - PAD", "src_c = offs_m % W - tap % KS + PAD",
                                       "grad weight", "layer"),
    "forward noise x1.5": ("acc += nz[:, None] * tl.load(ns_ptr)", "acc += 1.5 * nz[:, None] * tl.load(ns_ptr)", "y",
                           "layer"),
    "forward without its bias": ("acc += tl.load(b_ptr + offs_o, mask=o_mask, other=0.0)[None, :]", "", "y", "layer"),
    "ToRGB style gradient x1.5": ("tl.sum(acc * wt, axis=0)", "1.5 * tl.sum(acc * wt, axis=0)", "grad styles", "torgb"),
    "ToRGB weight gradient x1.5": ("tl.atomic_add(gw_ptr + tile, sr, mask",
                                   "tl.atomic_add(gw_ptr + tile, 1.5 * sr, mask", "grad weight", "torgb"),
}
MUTANT_CASES = [(m, dtype) for m in MUTANTS for dtype in ("fp32", "bf16")
                if dtype == "fp32" or "x1.5" in m]
BF16_SCALE = "1.1 *"  # the scaled mutants' factor with bf16 activations: caught by the emulation check


LAUNCHERS = ("modconv_forward", "modconv_backward")


@pytest.mark.parametrize("mutant,dtype", MUTANT_CASES)
def test_comparison_rejects_a_wrong_kernel_line(interpreter_device, monkeypatch, tmp_path, mutant, dtype):
    """``compare`` fails, at the output the wrong line touches first, for each of ``MUTANTS``
    (a copy of the kernels with that line changed, launched in place of the real ones)."""
    import tri3d.kernels.modconv as kernels

    old, new, first_wrong, which = MUTANTS[mutant]
    if dtype == "bf16":
        assert "1.5 *" in new
        new = new.replace("1.5 *", BF16_SCALE)
    launch_mutant(monkeypatch, kernels, [(old, new)], tmp_path, LAUNCHERS)
    clamp = 1.0 if dtype == "fp32" else None
    case = make_case(noise="sample", clamp=clamp, seed=1) if which == "layer" else make_case(
        k=1, demodulate=False, noise=None, activation="linear", clamp=4.0, O=11, seed=2)
    with pytest.raises(AssertionError, match=rf"^{first_wrong}: fused error"):
        compare(case, interpreter_device, dtype={"fp32": torch.float32, "bf16": torch.bfloat16}[dtype],
                floor_key=dtype)


def test_an_unchanged_copy_of_the_kernels_passes(interpreter_device, monkeypatch, tmp_path):
    """With no line changed the mutants' machinery (a copy loaded from a file, launched in
    place of the real kernels) passes the comparison."""
    import tri3d.kernels.modconv as kernels

    launch_mutant(monkeypatch, kernels, [], tmp_path, LAUNCHERS)
    compare(make_case(noise="sample", seed=1), interpreter_device)
