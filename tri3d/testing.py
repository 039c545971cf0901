"""Accuracy rule for fused paths (DESIGN.md, "Tolerances"), shared by tests and benches.

A fused result passes when its error against an fp64 reference is at most 2x the error
of the same-precision `_ref` path against that reference, or below a dtype floor.
"""
from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor

FLOORS = {"fp32": 1e-5, "tf32": 5e-4, "bf16": 2e-2, "fp16": 2e-2}


def relative_error(x: Tensor, reference: Tensor) -> float:
    """``max |x - ref| / max |ref|`` computed in fp64 (0 when both are zero)."""
    ref = reference.double()
    scale = ref.abs().max().item()
    err = (x.double() - ref).abs().max().item()
    return err / scale if scale > 0 else err


def assert_fused_close(fused: Tensor, ref_same: Tensor, ref64: Tensor, floor: float, name: str = "output") -> None:
    """Assert the tolerance rule; the message gives both errors and the bound."""
    if fused.shape != ref64.shape:
        raise AssertionError(f"{name}: shape {list(fused.shape)} != reference {list(ref64.shape)}")
    if not torch.isfinite(fused).all():
        raise AssertionError(f"{name}: fused result has NaN or inf")
    e_fused, e_ref = relative_error(fused, ref64), relative_error(ref_same, ref64)
    bound = max(2 * e_ref, floor)
    if e_fused > bound:
        raise AssertionError(f"{name}: fused error {e_fused:.3g} > bound {bound:.3g} (ref error {e_ref:.3g}, floor {floor:g})")


def truncate_mantissa(x: Tensor, kept_bits: int) -> Tensor:
    """fp32 ``x`` with all but the top ``kept_bits`` of its 23 mantissa bits cleared (rounded
    toward zero to a format with that many)."""
    return (x.float().contiguous().view(torch.int32) & -(1 << (23 - kept_bits))).view(torch.float32)


def tf32_truncate(x: Tensor) -> Tensor:
    """fp32 ``x`` with the 13 low mantissa bits cleared: what a tf32 tensor core reads."""
    return truncate_mantissa(x, 10)


class _Tf32Matmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return tf32_truncate(a) @ tf32_truncate(b)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        a, b = ctx.saved_tensors
        g = tf32_truncate(grad)
        return g @ tf32_truncate(b).transpose(-1, -2), tf32_truncate(a).transpose(-1, -2) @ g


def tf32_matmul(
    a: Tensor,  # [..., M, K] fp32
    b: Tensor,  # [K, N] fp32
) -> Tensor:  # [..., M, N]
    """``a @ b`` as tf32 tensor cores compute it (operands truncated, fp32 products and
    sums), with the backward's two products truncated the same way: the same-precision
    reference of a fused tf32 path."""
    return _Tf32Matmul.apply(a, b)


def tf32_conv2d(
    x: Tensor,  # [N, I, H, W] fp32
    weight: Tensor,  # [O, I, k, k] fp32
    padding: int = 0,
) -> Tensor:  # [N, O, H + 2 * padding - k + 1, W + 2 * padding - k + 1]
    """``F.conv2d(x, weight, padding=padding)`` (stride 1, correlation) as an im2col product
    through ``tf32_matmul``: operands truncated in the forward and in both backward products,
    as a tf32 implicit-GEMM convolution computes them."""
    N, _, H, W = x.shape
    O, _, k, _ = weight.shape
    columns = F.unfold(x, k, padding=padding)  # [N, I * k * k, L]
    y = tf32_matmul(columns.transpose(1, 2), weight.reshape(O, -1).t())  # [N, L, O]
    return y.transpose(1, 2).reshape(N, O, H + 2 * padding - k + 1, W + 2 * padding - k + 1)


SYNTHESIS_LAYER_RESULTS = ("out", "x", "weight", "styles", "bias", "noise_strength")


def synthesis_layer_case(fn, up: int, dtype: torch.dtype, device: str = "cpu", **kw) -> list[Tensor]:
    """A synthesis layer's modulated convolution through ``fn`` (``modulated_conv2d`` or its
    reference; ``kw`` e.g. ``impl``) on fixed random inputs seeded by ``up`` (bias, noise,
    leaky ReLU, clamp 1; 5 -> 7 channels, 6 x 6 input), cast to ``dtype`` on ``device``: the
    output and the gradients of ``sum(out * cot)`` (``cot`` drawn once in fp64) for x,
    weight, styles, bias and noise strength, on the CPU (named in ``SYNTHESIS_LAYER_RESULTS``)."""
    g = torch.Generator().manual_seed(up)
    x = torch.randn(2, 5, 6, 6, generator=g)
    w, s = torch.randn(7, 5, 3, 3, generator=g), torch.randn(2, 5, generator=g) + 1
    bias, ns = torch.randn(7, generator=g), torch.tensor(0.3)
    noise = torch.randn(2, 1, 6 * up, 6 * up, generator=g)
    cot = torch.randn(2, 7, 6 * up, 6 * up, generator=g, dtype=torch.float64)
    leaves = [t.to(device, dtype).requires_grad_() for t in (x, w, s, bias, ns)]
    out = fn(*leaves[:3], up=up, bias=leaves[3], noise=noise.to(device, dtype), noise_strength=leaves[4],
             activation="lrelu", clamp=1.0, **kw)
    return [t.cpu() for t in (out, *torch.autograd.grad(out, leaves, cot.to(device, dtype)))]


def replace_once(text: str, old: str, new: str, where: str) -> str:
    """``text`` with ``old`` replaced by ``new``; ``ValueError`` naming ``where`` unless ``old``
    occurs exactly once (a mutant that no longer matches its source must not pass by
    mutating nothing, or mutate two places)."""
    if text.count(old) != 1:
        raise ValueError(f"{where}: {old!r} occurs {text.count(old)} times, not once")
    return text.replace(old, new)


def mutated_module(
    module: ModuleType,
    replacements: list[tuple[str, str]],  # (text that occurs once in the module's source, what replaces it)
    directory: str | Path,
) -> ModuleType:
    """A copy of ``module`` with its source edited, written into ``directory`` and imported
    under another name (the original stays loaded): a mutant for checking that a test
    fails when one line of a kernel is wrong. Triton's JIT reads a kernel's source from its
    file, so the mutant is a real file. Raises ``ValueError`` when a text to replace does not
    occur exactly once (``replace_once``)."""
    source = Path(inspect.getsourcefile(module)).read_text()
    for old, new in replacements:
        source = replace_once(source, old, new, f"the source of {module.__name__}")
    stem = module.__name__.rsplit(".", 1)[-1]
    path = Path(directory) / f"{stem}_mutant.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"{module.__name__}_mutant_{abs(hash(source))}", path)
    mutant = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutant)
    return mutant


def launch_mutant(
    monkeypatch,  # pytest's fixture: undoes the replacement after the test
    module: ModuleType,
    replacements: list[tuple[str, str]],  # as in mutated_module
    directory: str | Path,
    launchers: tuple[str, ...],  # the module's launch functions the ops call
) -> ModuleType:
    """``mutated_module(module, replacements, directory)`` whose launch functions replace
    ``module``'s for the rest of the test (the ops import them from ``module`` at each call)."""
    mutant = mutated_module(module, replacements, directory)
    for name in launchers:
        monkeypatch.setattr(module, name, getattr(mutant, name))
    return mutant


def micro_train_config(data, run_dir, **kw):
    """A training config small enough for unit tests and smoke runs (16 px, 4 objects)."""
    from tri3d.metrics.shapes_judges import JudgeConfig
    from tri3d.models import DiscriminatorConfig, GeneratorConfig, RendererConfig
    from tri3d.runs.config import TrainConfig

    cfg = TrainConfig(
        preset="micro", data=str(data), run_dir=str(run_dir), device="cpu", batch=4, total_kimg=0.024, snapshot_kimg=1.0,
        log_every=1, lr_G=0.004, lr_D=0.004, views=2, min_view_angle_deg=60.0, view_perturb_deg=10.0, fov_deg=30.0,
        r1_interval=2, density_reg_every=2, blur_init_sigma=1.0, blur_fade_kimg=0.02, grid_objects=2,
        G=GeneratorConfig(z_dim=16, w_dim=16, triplane_resolution=16, triplane_channels=8, channel_base=256,
                          channel_max=32, extra_blocks=True, decoder_hidden=16, decoder_layers=3, image_resolution=16,
                          neural_rendering_resolution=16, background="learned",
                          renderer=RendererConfig(depth_samples=6, importance_samples=6, near=2.0, far=3.4)),
        D=DiscriminatorConfig(image_resolution=16, channel_base=256, channel_max=32, cmap_dim=16),
        metrics_judge=JudgeConfig(train_per_class=20, heldout_per_class=4, steps=40),
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg

