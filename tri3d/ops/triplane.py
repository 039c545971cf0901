"""Triplane feature sampling and the fused sample + decode op.

Numerics (DESIGN.md): world ``xyz`` in ``[-box_warp/2, box_warp/2]^3`` maps to
``[-1, 1]`` by ``xyz * 2 / box_warp``; each plane is read with
``F.grid_sample(bilinear, zeros padding, align_corners=False)`` at its two coordinates
(u -> width, v -> height) and the three planes' features are averaged.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from tri3d import _backend
from tri3d._backend import cpp_unavailable
from tri3d.ops._checks import check_finite, check_same_size, check_tensor, value_checks_on
from tri3d.ops._dispatch import always, resolve_impl, triton_auto_unavailable, triton_unavailable
from tri3d.ops._library import custom_op

# Coordinate indices (u, v) each plane is read at.
PLANE_AXES: dict[str, tuple[tuple[int, int], ...]] = {
    "xyz": ((0, 1), (0, 2), (1, 2)),
    "eg3d": ((0, 1), (0, 2), (2, 0)),  # EG3D's published planes (EG3D issue #67)
}


def plane_coords(
    xyz: Tensor,  # [B, N, 3]
    box_warp: float,
    plane_axes: str,
) -> Tensor:  # [B, 3, N, 2]
    """Normalized (u, v) grid coordinates of every point on each of the three planes."""
    axes = PLANE_AXES[plane_axes]
    coords = xyz * (2.0 / box_warp)
    return torch.stack([coords[..., list(uv)] for uv in axes], dim=1)


def _check_sample_args(
    planes: Tensor, xyz: Tensor, box_warp: float, plane_axes: str, plane_index: Tensor | None = None
) -> None:
    check_tensor("planes", planes, ("B", 3, "C", "H", "W"))
    check_tensor("xyz", xyz, ("B", "N", 3))
    if plane_index is None:
        check_same_size(("planes", "xyz"), (planes, xyz), (0, 0))
    else:
        check_tensor("plane_index", plane_index, xyz.shape[:2], dtypes=(torch.int32, torch.int64))
        if plane_index.numel() and value_checks_on(plane_index) and (
            int(plane_index.min()) < 0 or int(plane_index.max()) >= planes.shape[0]
        ):
            raise ValueError(f"plane_index must lie in [0, {planes.shape[0]}) (the planes' batch)")
    if plane_axes not in PLANE_AXES:
        raise ValueError(f"plane_axes must be one of {tuple(PLANE_AXES)}, got {plane_axes!r}")
    if not box_warp > 0:
        raise ValueError(f"box_warp must be > 0, got {box_warp}")
    check_finite("xyz", xyz)


def sample_triplane_ref(
    planes: Tensor,  # [T, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
    plane_index: Tensor | None = None,  # [B, N] int, triplane of each point
) -> Tensor:  # [B, N, C]
    """Reference triplane sampling in pure PyTorch (see module doc for the numerics)."""
    _check_sample_args(planes, xyz, box_warp, plane_axes, plane_index)
    if plane_index is not None:
        flat, index = xyz.reshape(1, -1, 3), plane_index.reshape(-1)
        feats = planes.new_zeros(flat.shape[1], planes.shape[2]).to(torch.result_type(planes, xyz))
        for t in range(planes.shape[0]):
            sel = index == t
            feats = feats.index_put((sel,), sample_triplane_ref(planes[t : t + 1], flat[:, sel], box_warp=box_warp, plane_axes=plane_axes)[0])
        return feats.reshape(*xyz.shape[:2], -1)
    B, _, C, H, W = planes.shape
    N = xyz.shape[1]
    grid = plane_coords(xyz, box_warp, plane_axes).to(planes.dtype).reshape(B * 3, 1, N, 2)
    # 16-bit planes on the CPU are sampled in fp32 (the same coordinates) and the features
    # rounded back: torch 2.4's CPU grid_sample has no bf16 kernel. Their gradient is then
    # summed in fp32, as the fused path sums it.
    if planes.device.type == "cpu" and planes.dtype in (torch.float16, torch.bfloat16):
        sampled, grid = planes.float(), grid.float()
    else:
        sampled = planes
    feats = F.grid_sample(
        sampled.reshape(B * 3, C, H, W), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # [B*3, C, 1, N]
    return feats.reshape(B, 3, C, N).mean(dim=1).transpose(1, 2).to(planes.dtype)


def triplane_decode_ref(
    planes: Tensor,  # [T, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    decoder: torch.nn.Module,
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
    plane_index: Tensor | None = None,  # [B, N] int
) -> tuple[Tensor, Tensor]:  # sigma_raw [B, N, 1], rgb [B, N, C_out]
    """Reference sample + decode: ``decoder(sample_triplane_ref(...))``."""
    feats = sample_triplane_ref(planes, xyz, box_warp=box_warp, plane_axes=plane_axes, plane_index=plane_index)
    return decoder(feats)


# ---------------------------------------------------------------- C++ (CPU) path


def _native_dtype(planes: Tensor) -> torch.dtype:
    """What the C++ path computes in: fp64 for fp64 planes, else fp32 (half-precision
    planes are read in fp32, as the reference reads them on the CPU)."""
    return torch.float64 if planes.dtype == torch.float64 else torch.float32


def sample_triplane_native_forward(
    planes_cl: Tensor,  # [T, 3, H, W, C] contiguous
    xyz: Tensor,  # [P, 3] contiguous
    plane_of: Tensor,  # [P] int64, triplane of each point
    axes: tuple[int, ...],  # (u, v) coordinate index of each plane, 6 ints
    box_warp: float,
) -> Tensor:  # [P, C]
    """Launch the C++ forward; every pointer's tensor is checked against the sizes passed."""
    T, _, H, W, C = planes_cl.shape
    P, dt = xyz.shape[0], planes_cl.dtype
    out = planes_cl.new_empty(P, C)
    pointers = _backend.native_pointers("sample_triplane", planes_cl.device, [
        ("planes", planes_cl, (T, 3, H, W, C), dt), ("xyz", xyz, (P, 3), dt),
        ("plane_index", plane_of, (P,), torch.int64), ("out", out, (P, C), dt),
    ])
    _backend.native().triplane_sample_forward("cpu", _backend.NATIVE_DTYPES[dt], P, T, H, W, C, *pointers[:3], axes,
                                              2.0 / box_warp, pointers[3])
    return out


def sample_triplane_native_backward(
    planes_cl: Tensor,  # [T, 3, H, W, C]
    xyz: Tensor,  # [P, 3]
    plane_of: Tensor,  # [P] int64
    axes: tuple[int, ...],
    box_warp: float,
    grad_out: Tensor,  # [P, C]
    xyz_grad: bool,
) -> tuple[Tensor, Tensor | None]:  # grad_planes [T, 3, H, W, C], grad_xyz [P, 3] or None
    """Launch the C++ backward: the planes' gradient always, the points' when asked."""
    T, _, H, W, C = planes_cl.shape
    P, dt = xyz.shape[0], planes_cl.dtype
    g_planes = torch.empty_like(planes_cl)
    g_xyz = xyz.new_empty(P, 3) if xyz_grad else None
    pointers = _backend.native_pointers("sample_triplane backward", planes_cl.device, [
        ("planes", planes_cl, (T, 3, H, W, C), dt), ("xyz", xyz, (P, 3), dt),
        ("plane_index", plane_of, (P,), torch.int64), ("grad_features", grad_out, (P, C), dt),
        ("grad_planes", g_planes, (T, 3, H, W, C), dt), ("grad_xyz", g_xyz, (P, 3), dt),
    ])
    _backend.native().triplane_sample_backward("cpu", _backend.NATIVE_DTYPES[dt], P, T, H, W, C, *pointers[:3], axes,
                                               2.0 / box_warp, *pointers[3:])
    return g_planes, g_xyz


class _SampleTriplaneNative(torch.autograd.Function):
    """C++ triplane sampling over flattened points; gradients for the planes and points."""

    @staticmethod
    def forward(ctx, planes_cl: Tensor, xyz: Tensor, plane_of: Tensor, axes: tuple[int, ...], box_warp: float):
        ctx.save_for_backward(planes_cl, xyz, plane_of)
        ctx.config = (axes, box_warp)
        return sample_triplane_native_forward(planes_cl, xyz, plane_of, axes, box_warp)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        planes_cl, xyz, plane_of = ctx.saved_tensors
        g_planes, g_xyz = sample_triplane_native_backward(
            planes_cl, xyz, plane_of, *ctx.config, grad_out.to(planes_cl.dtype).contiguous(), ctx.needs_input_grad[1]
        )
        return g_planes, g_xyz, None, None, None


def sample_triplane_native(
    planes: Tensor,  # [T, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
    plane_index: Tensor | None = None,  # [B, N] int, triplane of each point
) -> Tensor:  # [B, N, C]
    """The C++ path of ``sample_triplane`` (CPU tensors; fp32, or fp64 for fp64 planes).
    Planes already channels-last in memory (``planes_for_decode``) are read without a copy."""
    _check_sample_args(planes, xyz, box_warp, plane_axes, plane_index)
    B, N, _ = xyz.shape
    dt = _native_dtype(planes)
    planes_cl = planes.to(dt).permute(0, 1, 3, 4, 2).contiguous()
    if plane_index is None:
        plane_of = torch.arange(B, device=xyz.device).repeat_interleave(N)
    else:
        plane_of = plane_index.reshape(-1).to(torch.int64)
    axes = tuple(i for uv in PLANE_AXES[plane_axes] for i in uv)
    feats = _SampleTriplaneNative.apply(planes_cl, xyz.to(dt).reshape(B * N, 3).contiguous(), plane_of, axes,
                                        float(box_warp))
    return feats.reshape(B, N, planes.shape[2]).to(planes.dtype)


# ---------------------------------------------------------------- fused (Triton) path

PRECISIONS = ("auto", "ieee", "tf32", "bf16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The fused path's dot operands for ``precision``: "auto" is "tf32" on CUDA tensors
    (what cuBLAS / cuDNN users get with ``allow_tf32``; the exact-fp32 "ieee" path runs on
    FMA units and spills) and "ieee" elsewhere (the interpreter); the others as named."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "tf32" if device.type == "cuda" else "ieee"
    return precision


MAX_HIDDEN = 3


def _pad2(w: Tensor, rows: int, cols: int) -> Tensor:  # [r, c] -> [rows, cols], row-major
    # contiguous(): with nothing to pad, F.pad may hand back the transposed view itself.
    return F.pad(w, (0, cols - w.shape[1], 0, rows - w.shape[0])).contiguous()


def _pad_dim(n: int) -> int:
    """A matrix dimension padded for the kernels' dots: a power of two, at least 16 (a loop,
    not ``int.bit_length``, which torch 2.4's dynamo cannot trace)."""
    padded = 16
    while padded < n:
        padded *= 2
    return padded


def pack_decoder(
    layers: list[tuple[Tensor, Tensor]],  # [(weight [out, in], bias [out])] effective
) -> tuple[list[Tensor], int, int]:
    """Decoder layers as the kernel's padded fp32 ``[W0, Wh, Wo, b0, bh, bo]`` (x @ W
    orientation, differentiable), the number of hidden layers and the output width.
    ``Wo`` / ``bo`` hold the rgb outputs in columns ``0 .. C_out - 1`` (padded to ``RP``)
    and sigma in column ``RP``: ``[HP, 2 RP]`` / ``[2 RP]``
    (``kernels/triplane_mlp.py``)."""
    n_hidden = len(layers) - 1
    if not 1 <= n_hidden <= MAX_HIDDEN:
        raise ValueError(f"the fused triplane decoder supports 1..{MAX_HIDDEN} hidden layers, got {n_hidden}")
    hid = layers[0][0].shape[0]
    if any(w.shape != (hid, hid) for w, _ in layers[1:-1]) or layers[-1][0].shape[1] != hid:
        raise ValueError("decoder hidden layers must all have the same width for the fused path")
    c_in, n_out = layers[0][0].shape[1], layers[-1][0].shape[0]
    cp, hp, rp = _pad_dim(c_in), _pad_dim(hid), _pad_dim(n_out - 1)
    f32 = [(w.float(), b.float()) for w, b in layers]
    w0 = _pad2(f32[0][0].t(), cp, hp)
    b0 = F.pad(f32[0][1], (0, hp - hid))
    hidden = f32[1:-1]
    if hidden:
        wh = torch.stack([_pad2(w.t(), hp, hp) for w, _ in hidden])
        bh = torch.stack([F.pad(b, (0, hp - hid)) for _, b in hidden])
    else:
        wh, bh = w0.new_zeros(1, hp, hp), w0.new_zeros(1, hp)
    wo_t, bo_all = f32[-1][0].t(), f32[-1][1]  # [hid, n_out], [n_out]: sigma first, then rgb
    wo = torch.cat([_pad2(wo_t[:, 1:], hp, rp), _pad2(wo_t[:, :1], hp, rp)], dim=1)
    bo = torch.cat([F.pad(bo_all[1:], (0, rp - (n_out - 1))), F.pad(bo_all[:1], (0, rp - 1))])
    return [w0, wh, wo, b0, bh, bo], n_hidden, n_out


@custom_op("tri3d::triplane_mlp_fwd", mutates_args=())
def _fused_fwd(
    planes_cl: Tensor,  # [T, 3, H, W, C]
    coords: Tensor,  # [P, 3] fp32
    plane_index: Optional[Tensor],  # [P] int32
    w0: Tensor, wh: Tensor, wo: Tensor, b0: Tensor, bh: Tensor, bo: Tensor,
    n_hidden: int, n_out: int, points_per_plane: int, box_warp: float, eg3d_axes: bool, precision: str,
) -> Tensor:  # [P, n_out]
    from tri3d.kernels.triplane_mlp import triplane_mlp_forward
    from tri3d.utils.nvtx import nvtx_range

    with nvtx_range("tri3d.triplane_decode.fwd"), _backend.on_device(coords.device):
        return triplane_mlp_forward(
            planes_cl, coords, plane_index, (w0, wh, wo), (b0, bh, bo), n_hidden=n_hidden, n_out=n_out,
            points_per_plane=points_per_plane, box_warp=box_warp, eg3d_axes=eg3d_axes, precision=precision,
        )


@_fused_fwd.register_fake
def _fused_fwd_fake(planes_cl, coords, plane_index, w0, wh, wo, b0, bh, bo, n_hidden, n_out, *args):
    return coords.new_empty(coords.shape[0], n_out, dtype=torch.float32)


@custom_op("tri3d::triplane_mlp_bwd", mutates_args=())
def _fused_bwd(
    planes_cl: Tensor,  # [T, 3, H, W, C]
    coords: Tensor,  # [P, 3]
    plane_index: Optional[Tensor],  # [P]
    w0: Tensor, wh: Tensor, wo: Tensor, b0: Tensor, bh: Tensor, bo: Tensor,
    grad_out: Tensor,  # [P, n_out]
    n_hidden: int, points_per_plane: int, box_warp: float, eg3d_axes: bool, precision: str,
    plane_grads: bool, weight_grads: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Plane and decoder gradients in one kernel launch; a gradient not asked for is zeros
    and costs nothing (a frozen decoder skips the weight reductions, fixed planes the scatter)."""
    from tri3d.kernels.triplane_mlp import triplane_mlp_backward
    from tri3d.utils.nvtx import nvtx_range

    with nvtx_range("tri3d.triplane_decode.bwd"), _backend.on_device(coords.device):
        g_planes, g_w, g_b = triplane_mlp_backward(
            planes_cl, coords, plane_index, (w0, wh, wo), (b0, bh, bo), grad_out.float(), n_hidden=n_hidden,
            points_per_plane=points_per_plane, box_warp=box_warp, eg3d_axes=eg3d_axes, precision=precision,
            plane_grads=plane_grads, weight_grads=weight_grads,
        )
    return (g_planes.to(planes_cl.dtype), *g_w, *g_b)


@_fused_bwd.register_fake
def _fused_bwd_fake(planes_cl, coords, plane_index, w0, wh, wo, b0, bh, bo, *args):
    return (torch.empty_like(planes_cl), *(torch.empty_like(t) for t in (w0, wh, wo, b0, bh, bo)))


def _fused_setup_context(ctx, inputs, output) -> None:
    planes_cl, coords, plane_index, w0, wh, wo, b0, bh, bo, n_hidden, _, ppp, box_warp, eg3d, precision = inputs
    ctx.save_for_backward(planes_cl, coords, plane_index, w0, wh, wo, b0, bh, bo)
    ctx.config = (n_hidden, ppp, box_warp, eg3d, precision)


def _fused_backward(ctx, grad_out: Tensor):
    planes_cl, coords, plane_index, *params = ctx.saved_tensors
    plane_grads, weight_grads = ctx.needs_input_grad[0], any(ctx.needs_input_grad[3:9])
    g_planes, *g_params = _fused_bwd(planes_cl, coords, plane_index, *params, grad_out.contiguous(), *ctx.config,
                                     plane_grads, weight_grads)
    return (g_planes, None, None, *g_params, None, None, None, None, None, None)


_fused_fwd.register_autograd(_fused_backward, setup_context=_fused_setup_context)


def triplane_decode_fused(
    planes: Tensor,  # [T, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    decoder: torch.nn.Module,
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
    plane_index: Tensor | None = None,  # [B, N] int
    precision: str = "auto",
) -> tuple[Tensor, Tensor]:  # sigma_raw [B, N, 1], rgb [B, N, C_out] (fp32)
    """The Triton path of ``triplane_decode`` (differentiable in planes and decoder)."""
    _check_sample_args(planes, xyz, box_warp, plane_axes, plane_index)
    precision = resolve_precision(precision, xyz.device)
    if xyz.requires_grad:
        raise ValueError(
            "xyz requires grad, but the fused triplane_decode has no gradient w.r.t. coordinates; "
            "detach xyz or use impl='ref'"
        )
    layers = decoder.effective_layers()
    c_in = layers[0][0].shape[1]
    if c_in != planes.shape[2]:
        raise ValueError(f"decoder expects {c_in} input channels, planes have {planes.shape[2]}")
    params, n_hidden, n_out = pack_decoder(layers)
    B, N, _ = xyz.shape
    # channels-last: one texel's C contiguous (no copy when planes_for_decode made them so)
    planes_cl = planes.permute(0, 1, 3, 4, 2).contiguous()
    coords = xyz.reshape(B * N, 3).float().contiguous()
    index = None if plane_index is None else plane_index.reshape(-1).to(torch.int32).contiguous()
    out = _fused_fwd(
        planes_cl, coords, index, *params, n_hidden, n_out, max(N, 1), float(box_warp), plane_axes == "eg3d", precision
    )
    out = out.reshape(B, N, n_out)
    return out[..., :1], out[..., 1:]


# ---------------------------------------------------------------- public API


def sample_triplane(
    planes: Tensor,  # [T, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
    plane_index: Tensor | None = None,  # [B, N] int
    impl: str = "auto",
) -> Tensor:  # [B, N, C]
    """Bilinearly sample the three planes at world points and average them.

    Args:
        planes: triplane features ``[T, 3, C, H, W]``.
        xyz: world points ``[B, N, 3]``; points outside the box read zeros.
        box_warp: side of the cube the planes span.
        plane_axes: "xyz" (planes xy, xz, yz) or "eg3d" (xy, xz, zx).
        plane_index: triplane of each point ``[B, N]``; default: point ``(b, n)`` reads
            triplane ``b`` (then ``T == B``).
        impl: "auto", "ref" or "cpp" (CPU tensors: the native extension's loop over
            points; fp32, or fp64 for fp64 planes).

    Returns:
        Features ``[B, N, C]``.
    """
    if resolve_impl("sample_triplane", impl, _device_of(xyz), {"cpp": cpp_unavailable, "ref": always}) == "cpp":
        return sample_triplane_native(planes, xyz, box_warp=box_warp, plane_axes=plane_axes, plane_index=plane_index)
    return sample_triplane_ref(planes, xyz, box_warp=box_warp, plane_axes=plane_axes, plane_index=plane_index)


def triplane_decode(
    planes: Tensor,  # [T, 3, C, H, W]
    xyz: Tensor,  # [B, N, 3]
    decoder: torch.nn.Module,
    *,
    box_warp: float = 1.0,
    plane_axes: str = "xyz",
    plane_index: Tensor | None = None,  # [B, N] int
    precision: str = "auto",
    impl: str = "auto",
) -> tuple[Tensor, Tensor]:  # sigma_raw [B, N, 1], rgb [B, N, C_out]
    """Sample the triplane at ``xyz`` and run the decoder MLP on the averaged features.

    Args:
        planes: triplane features ``[T, 3, C, H, W]``.
        xyz: world points ``[B, N, 3]``.
        decoder: a ``TriplaneDecoder`` (fused paths read ``effective_layers()``).
        box_warp: side of the cube the planes span.
        plane_axes: "xyz" or "eg3d".
        plane_index: triplane of each point ``[B, N]`` (see ``sample_triplane``).
        precision: MLP dot operands of the fused path: "auto" (default: "tf32" on CUDA
            tensors, "ieee" under the interpreter; ``resolve_precision``), "ieee" (exact
            fp32, for tests), "tf32" or "bf16" (fp32 accumulation in every case). The
            reference and C++ paths compute in the inputs' dtype either way.
        impl: "auto", "ref", "triton" or "cpp" (CPU tensors: ``sample_triplane``'s C++
            path, then the decoder module).

    Returns:
        ``(sigma_raw [B, N, 1], rgb [B, N, C_out])``.
    """
    chosen = _decode_impl(impl, _device_of(xyz))
    if chosen == "triton":
        return triplane_decode_fused(
            planes, xyz, decoder, box_warp=box_warp, plane_axes=plane_axes, plane_index=plane_index,
            precision=precision,
        )
    if chosen == "cpp":
        return decoder(sample_triplane_native(planes, xyz, box_warp=box_warp, plane_axes=plane_axes,
                                              plane_index=plane_index))
    return triplane_decode_ref(planes, xyz, decoder, box_warp=box_warp, plane_axes=plane_axes, plane_index=plane_index)


def planes_for_decode(
    planes: Tensor,  # [T, 3, C, H, W]
    *,
    impl: str = "auto",
) -> Tensor:  # [T, 3, C, H, W], memory laid out for the chosen path
    """``planes`` in the memory layout and dtype the path ``triplane_decode(..., impl=impl)``
    picks for them reads: for the fused path a ``[T, 3, C, H, W]`` view of channels-last
    memory ``[T, 3, H, W, C]`` (which it then uses without a copy) in the planes' own dtype
    (bf16 planes are read as they are), for the C++ path the same view in fp32 (fp64
    planes as they are), for the reference unchanged, half-precision planes in fp32 (the
    fused path samples them in fp32 too).

    A renderer that decodes one triplane in several calls (coarse and fine samples, ray
    chunks) converts once per render instead of once per call; the plane gradients of
    all calls then meet in that one layout and are transposed back once."""
    check_tensor("planes", planes, ("B", 3, "C", "H", "W"))
    chosen = _decode_impl(impl, planes.device)
    if chosen == "cpp":
        planes = planes.to(_native_dtype(planes))
    elif chosen == "ref":
        return planes.float() if planes.dtype in (torch.bfloat16, torch.float16) else planes
    return planes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def _decode_impl(impl: str, device: torch.device) -> str:
    """The path ``triplane_decode`` takes for ``impl`` on ``device``."""
    probe = triton_unavailable if impl == "triton" else triton_auto_unavailable
    return resolve_impl("triplane_decode", impl, device, {"triton": probe, "cpp": cpp_unavailable, "ref": always})


def _device_of(t: object) -> torch.device:
    return t.device if isinstance(t, Tensor) else torch.device("cpu")
