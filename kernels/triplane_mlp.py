"""Fused triplane sampling + decoder MLP: Triton kernels and their launch functions.

Per block of points the forward kernel projects each point onto the three planes,
gathers the 4 bilinear texels x C channels of each plane from a channels-last copy
``[T, 3, H, W, C]``, averages, runs the MLP with ``tl.dot`` and writes only the decoded
``[P, 1 + C_out]`` (sigma_raw, activated rgb). The backward kernel recomputes those
activations from the inputs, back-propagates through the MLP, reduces weight and bias
gradients per program (one atomic per program) and scatters plane gradients with fp32
atomics. Nothing per point is stored between the two.

Layout contract of the launch functions (the op layer builds these):
- ``planes``: ``[T, 3, H, W, C]`` contiguous, fp32/bf16/fp16.
- ``coords``: ``[P, 3]`` fp32 world coordinates.
- ``plane_index``: ``[P]`` int32 triplane of each point, or ``None`` for the layout where
  point ``p`` belongs to triplane ``p // points_per_plane``.
- ``weights``: ``(W0 [CP, HP], Wh [max(NH-1, 1), HP, HP], Wo [HP, OP])`` fp32,
  ``x @ W`` orientation, zero-padded to powers of two >= 16; ``biases`` likewise
  ``(b0 [HP], bh [max(NH-1, 1), HP], bo [OP])``.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from tri3d.kernels.common import dot as _dot
from tri3d.kernels.common import kernel_precision as _kernel_precision

RGB_PAD = 1e-3
RGB_PAD_C = tl.constexpr(RGB_PAD)
PRECISIONS = ("ieee", "tf32", "bf16")


def kernel_precision(precision: str) -> str:
    """The PRECISION constexpr of the triplane kernels (ieee, tf32 or bf16 operands)."""
    return _kernel_precision(precision, PRECISIONS)


@triton.jit
def _softplus(x):
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


@triton.jit
def _load_matrix(ptr, R: tl.constexpr, K: tl.constexpr, TRANSPOSE: tl.constexpr):
    """Load a row-major [R, K] fp32 matrix, or its transpose [K, R]."""
    if TRANSPOSE:
        return tl.load(ptr + tl.arange(0, R)[None, :] * K + tl.arange(0, K)[:, None])
    else:
        return tl.load(ptr + tl.arange(0, R)[:, None] * K + tl.arange(0, K)[None, :])


@triton.jit
def _plane_uv(x, y, z, PLANE: tl.constexpr, EG3D_AXES: tl.constexpr):
    """Normalized (u, v) of a point on plane 0 (x, y), 1 (x, z) or 2 ((y, z), EG3D: (z, x))."""
    if PLANE == 0:
        return x, y
    elif PLANE == 1:
        return x, z
    else:
        if EG3D_AXES:
            return z, x
        else:
            return y, z


@triton.jit
def _texel_setup(u, v, H, W):
    """Integer corner (x0, y0) and fractional weights (fx, fy) of a bilinear read
    (align_corners=False). Coordinates are clamped first so huge values cannot overflow."""
    ix = tl.minimum(tl.maximum(((u + 1.0) * W - 1.0) * 0.5, -2.0), W + 1.0)
    iy = tl.minimum(tl.maximum(((v + 1.0) * H - 1.0) * 0.5, -2.0), H + 1.0)
    x0f = tl.floor(ix)
    y0f = tl.floor(iy)
    return x0f.to(tl.int32), y0f.to(tl.int32), ix - x0f, iy - y0f


@triton.jit
def _gather_plane(
    planes_ptr,  # *T [T, 3, H, W, C]
    plane_base,  # [BLOCK] int64 offset of this point's plane
    u, v,  # [BLOCK] normalized coordinates
    H, W, C,  # runtime sizes
    offs_c,  # [CP] channel offsets
    row_mask,  # [BLOCK] valid points
):
    x0, y0, fx, fy = _texel_setup(u, v, H, W)
    cmask = offs_c[None, :] < C
    acc = tl.zeros((u.shape[0], offs_c.shape[0]), dtype=tl.float32)
    for dy in tl.static_range(2):
        for dx in tl.static_range(2):
            xi = x0 + dx
            yi = y0 + dy
            wgt = (fx if dx == 1 else 1.0 - fx) * (fy if dy == 1 else 1.0 - fy)
            ok = row_mask & (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
            off = plane_base + (yi.to(tl.int64) * W + xi) * C
            val = tl.load(planes_ptr + off[:, None] + offs_c[None, :], mask=ok[:, None] & cmask, other=0.0)
            acc += wgt[:, None] * val.to(tl.float32)
    return acc


@triton.jit
def _scatter_plane(
    grad_ptr,  # *fp32 [T, 3, H, W, C]
    plane_base,  # [BLOCK] int64
    u, v,  # [BLOCK]
    H, W, C,
    offs_c,  # [CP]
    row_mask,  # [BLOCK]
    g,  # [BLOCK, CP] gradient w.r.t. this plane's bilinear read
):
    x0, y0, fx, fy = _texel_setup(u, v, H, W)
    cmask = offs_c[None, :] < C
    for dy in tl.static_range(2):
        for dx in tl.static_range(2):
            xi = x0 + dx
            yi = y0 + dy
            wgt = (fx if dx == 1 else 1.0 - fx) * (fy if dy == 1 else 1.0 - fy)
            ok = row_mask & (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
            off = plane_base + (yi.to(tl.int64) * W + xi) * C
            tl.atomic_add(grad_ptr + off[:, None] + offs_c[None, :], wgt[:, None] * g, mask=ok[:, None] & cmask,
                          sem="relaxed")


@triton.jit
def _point_setup(
    coords_ptr, plane_index_ptr, block_id, P, points_per_plane, coord_scale, plane_size,
    BLOCK: tl.constexpr, HAS_INDEX: tl.constexpr,
):
    """Rows of this program, their normalized coordinates and their triplane's base offset."""
    rows64 = block_id.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    row_mask = rows64 < P
    x = tl.load(coords_ptr + rows64 * 3 + 0, mask=row_mask, other=0.0) * coord_scale
    y = tl.load(coords_ptr + rows64 * 3 + 1, mask=row_mask, other=0.0) * coord_scale
    z = tl.load(coords_ptr + rows64 * 3 + 2, mask=row_mask, other=0.0) * coord_scale
    if HAS_INDEX:
        tri = tl.load(plane_index_ptr + rows64, mask=row_mask, other=0).to(tl.int64)
    else:
        tri = rows64 // points_per_plane
    base = tri * 3 * plane_size
    return rows64, row_mask, x, y, z, base


@triton.jit
def triplane_mlp_fwd_kernel(
    planes_ptr,  # *fp32|bf16|fp16 [T, 3, H, W, C] channels-last planes
    coords_ptr,  # *fp32 [P, 3] world coordinates
    plane_index_ptr,  # *int32 [P] triplane of each point (read only when HAS_INDEX)
    w0_ptr,  # *fp32 [CP, HP] first layer, x @ W orientation
    b0_ptr,  # *fp32 [HP]
    wh_ptr,  # *fp32 [NH-1, HP, HP] hidden -> hidden layers
    bh_ptr,  # *fp32 [NH-1, HP]
    wo_ptr,  # *fp32 [HP, OP] output layer
    bo_ptr,  # *fp32 [OP]
    out_ptr,  # *fp32 [P, NOUT] sigma_raw, then activated rgb
    P,  # number of points
    points_per_plane,  # points per triplane (layout without an index)
    H,  # plane height
    W,  # plane width
    C,  # plane channels
    plane_size,  # H * W * C elements of one plane
    NOUT,  # 1 + C_out
    coord_scale,  # 2 / box_warp
    CP: tl.constexpr,  # padded channels (power of two >= 16)
    HP: tl.constexpr,  # padded hidden width
    OP: tl.constexpr,  # padded output width
    N_HIDDEN: tl.constexpr,  # hidden (softplus) layers, 1..3
    EG3D_AXES: tl.constexpr,  # third plane reads (z, x) instead of (y, z)
    HAS_INDEX: tl.constexpr,  # points carry a triplane index
    PRECISION: tl.constexpr,  # "ieee" | "tf32" | "bf16" MLP dot operands
    BLOCK: tl.constexpr,  # points per program
):
    pid = tl.program_id(0)
    rows64, row_mask, x, y, z, base = _point_setup(
        coords_ptr, plane_index_ptr, pid, P, points_per_plane, coord_scale, plane_size, BLOCK, HAS_INDEX
    )
    offs_c = tl.arange(0, CP)
    feat = tl.zeros((BLOCK, CP), dtype=tl.float32)
    for k in tl.static_range(3):
        u, v = _plane_uv(x, y, z, k, EG3D_AXES)
        feat += _gather_plane(planes_ptr, base + k * plane_size, u, v, H, W, C, offs_c, row_mask)
    feat = feat * (1.0 / 3.0)

    offs_h = tl.arange(0, HP)
    a = _softplus(_dot(feat, _load_matrix(w0_ptr, CP, HP, False), PRECISION) + tl.load(b0_ptr + offs_h)[None, :])
    for layer in tl.static_range(N_HIDDEN - 1):
        w = _load_matrix(wh_ptr + layer * HP * HP, HP, HP, False)
        a = _softplus(_dot(a, w, PRECISION) + tl.load(bh_ptr + layer * HP + offs_h)[None, :])
    offs_o = tl.arange(0, OP)
    o = _dot(a, _load_matrix(wo_ptr, HP, OP, False), PRECISION) + tl.load(bo_ptr + offs_o)[None, :]
    act = tl.where(offs_o[None, :] == 0, o, tl.sigmoid(o) * (1.0 + 2.0 * RGB_PAD_C) - RGB_PAD_C)
    out_mask = row_mask[:, None] & (offs_o[None, :] < NOUT)
    tl.store(out_ptr + rows64[:, None] * NOUT + offs_o[None, :], act, mask=out_mask)



@triton.jit
def triplane_mlp_bwd_kernel(
    planes_ptr,  # *fp32|bf16|fp16 [T, 3, H, W, C] channels-last planes
    coords_ptr,  # *fp32 [P, 3]
    plane_index_ptr,  # *int32 [P] (read only when HAS_INDEX)
    w0_ptr,  # *fp32 [CP, HP]
    b0_ptr,  # *fp32 [HP]
    wh_ptr,  # *fp32 [NH-1, HP, HP]
    bh_ptr,  # *fp32 [NH-1, HP]
    wo_ptr,  # *fp32 [HP, OP]
    bo_ptr,  # *fp32 [OP]
    grad_out_ptr,  # *fp32 [P, NOUT] incoming gradient of the decoded output
    grad_planes_ptr,  # *fp32 [T, 3, H, W, C] plane gradient (atomic adds)
    grad_w0_ptr,  # *fp32 [CP, HP] (one atomic add per program)
    grad_b0_ptr,  # *fp32 [HP]
    grad_wh_ptr,  # *fp32 [NH-1, HP, HP]
    grad_bh_ptr,  # *fp32 [NH-1, HP]
    grad_wo_ptr,  # *fp32 [HP, OP]
    grad_bo_ptr,  # *fp32 [OP]
    P,  # number of points
    points_per_plane,  # points per triplane (layout without an index)
    H,  # plane height
    W,  # plane width
    C,  # plane channels
    plane_size,  # H * W * C elements of one plane
    NOUT,  # 1 + C_out
    coord_scale,  # 2 / box_warp
    blocks_per_program,  # consecutive point blocks each program handles
    CP: tl.constexpr,  # padded channels
    HP: tl.constexpr,  # padded hidden width
    OP: tl.constexpr,  # padded output width
    N_HIDDEN: tl.constexpr,  # hidden layers, 1..3
    EG3D_AXES: tl.constexpr,  # plane order
    HAS_INDEX: tl.constexpr,  # points carry a triplane index
    PRECISION: tl.constexpr,  # MLP dot operand precision
    WEIGHT_GRADS: tl.constexpr,  # accumulate decoder weight/bias gradients
    PLANE_GRADS: tl.constexpr,  # scatter plane gradients
    BLOCK: tl.constexpr,  # points per block
):
    pid = tl.program_id(0)
    offs_c = tl.arange(0, CP)
    offs_h = tl.arange(0, HP)
    offs_o = tl.arange(0, OP)
    # Weight/bias gradients are accumulated over this program's blocks, then added once.
    acc_w0 = tl.zeros((CP, HP), dtype=tl.float32)
    acc_b0 = tl.zeros((HP,), dtype=tl.float32)
    acc_w1 = tl.zeros((HP, HP), dtype=tl.float32)
    acc_b1 = tl.zeros((HP,), dtype=tl.float32)
    acc_w2 = tl.zeros((HP, HP), dtype=tl.float32)
    acc_b2 = tl.zeros((HP,), dtype=tl.float32)
    acc_wo = tl.zeros((HP, OP), dtype=tl.float32)
    acc_bo = tl.zeros((OP,), dtype=tl.float32)
    for it in range(0, blocks_per_program):
        rows64, row_mask, x, y, z, base = _point_setup(
            coords_ptr, plane_index_ptr, pid * blocks_per_program + it, P, points_per_plane, coord_scale,
            plane_size, BLOCK, HAS_INDEX,
        )
        # Recompute the forward pass; only pre-activations stay live (softplus is recomputed).
        feat = tl.zeros((BLOCK, CP), dtype=tl.float32)
        for k in tl.static_range(3):
            u, v = _plane_uv(x, y, z, k, EG3D_AXES)
            feat += _gather_plane(planes_ptr, base + k * plane_size, u, v, H, W, C, offs_c, row_mask)
        feat = feat * (1.0 / 3.0)
        z0 = _dot(feat, _load_matrix(w0_ptr, CP, HP, False), PRECISION) + tl.load(b0_ptr + offs_h)[None, :]
        z_last = z0
        if N_HIDDEN >= 2:
            z1 = _dot(_softplus(z0), _load_matrix(wh_ptr, HP, HP, False), PRECISION) + tl.load(bh_ptr + offs_h)[None, :]
            z_last = z1
        if N_HIDDEN >= 3:
            z2 = _dot(_softplus(z1), _load_matrix(wh_ptr + HP * HP, HP, HP, False), PRECISION)
            z2 += tl.load(bh_ptr + HP + offs_h)[None, :]
            z_last = z2
        o = _dot(_softplus(z_last), _load_matrix(wo_ptr, HP, OP, False), PRECISION) + tl.load(bo_ptr + offs_o)[None, :]

        # Output activations: sigma_raw is linear, rgb = sigmoid(o) * (1 + 2 pad) - pad.
        out_mask = row_mask[:, None] & (offs_o[None, :] < NOUT)
        g = tl.load(grad_out_ptr + rows64[:, None] * NOUT + offs_o[None, :], mask=out_mask, other=0.0)
        s = tl.sigmoid(o)
        g = tl.where(offs_o[None, :] == 0, g, g * s * (1.0 - s) * (1.0 + 2.0 * RGB_PAD_C))

        # Back through the layers, last to first.
        if WEIGHT_GRADS:
            acc_wo += _dot(tl.trans(_softplus(z_last)), g, PRECISION)
            acc_bo += tl.sum(g, axis=0)
        g = _dot(g, _load_matrix(wo_ptr, HP, OP, True), PRECISION)  # gradient w.r.t. softplus(z_last)
        if N_HIDDEN >= 3:
            g = g * tl.sigmoid(z2)
            if WEIGHT_GRADS:
                acc_w2 += _dot(tl.trans(_softplus(z1)), g, PRECISION)
                acc_b2 += tl.sum(g, axis=0)
            g = _dot(g, _load_matrix(wh_ptr + HP * HP, HP, HP, True), PRECISION)
        if N_HIDDEN >= 2:
            g = g * tl.sigmoid(z1)
            if WEIGHT_GRADS:
                acc_w1 += _dot(tl.trans(_softplus(z0)), g, PRECISION)
                acc_b1 += tl.sum(g, axis=0)
            g = _dot(g, _load_matrix(wh_ptr, HP, HP, True), PRECISION)
        g = g * tl.sigmoid(z0)
        if WEIGHT_GRADS:
            acc_w0 += _dot(tl.trans(feat), g, PRECISION)
            acc_b0 += tl.sum(g, axis=0)
        if PLANE_GRADS:  # scatter to the 4 texels of each plane
            g_feat = _dot(g, _load_matrix(w0_ptr, CP, HP, True), PRECISION) * (1.0 / 3.0)
            for k in tl.static_range(3):
                u, v = _plane_uv(x, y, z, k, EG3D_AXES)
                _scatter_plane(grad_planes_ptr, base + k * plane_size, u, v, H, W, C, offs_c, row_mask, g_feat)

    if WEIGHT_GRADS:
        _add_weight_grads(
            grad_w0_ptr, grad_b0_ptr, grad_wh_ptr, grad_bh_ptr, grad_wo_ptr, grad_bo_ptr,
            acc_w0, acc_b0, acc_w1, acc_b1, acc_w2, acc_b2, acc_wo, acc_bo, CP, HP, OP, N_HIDDEN,
        )


@triton.jit
def _add_weight_grads(
    grad_w0_ptr, grad_b0_ptr, grad_wh_ptr, grad_bh_ptr, grad_wo_ptr, grad_bo_ptr,
    acc_w0, acc_b0, acc_w1, acc_b1, acc_w2, acc_b2, acc_wo, acc_bo,
    CP: tl.constexpr, HP: tl.constexpr, OP: tl.constexpr, N_HIDDEN: tl.constexpr,
):
    """One fp32 atomic add per element of this program's accumulated weight gradients."""
    offs_c = tl.arange(0, CP)
    offs_h = tl.arange(0, HP)
    offs_o = tl.arange(0, OP)
    hh = offs_h[:, None] * HP + offs_h[None, :]
    tl.atomic_add(grad_wo_ptr + offs_h[:, None] * OP + offs_o[None, :], acc_wo, sem="relaxed")
    tl.atomic_add(grad_bo_ptr + offs_o, acc_bo, sem="relaxed")
    if N_HIDDEN >= 3:
        tl.atomic_add(grad_wh_ptr + HP * HP + hh, acc_w2, sem="relaxed")
        tl.atomic_add(grad_bh_ptr + HP + offs_h, acc_b2, sem="relaxed")
    if N_HIDDEN >= 2:
        tl.atomic_add(grad_wh_ptr + hh, acc_w1, sem="relaxed")
        tl.atomic_add(grad_bh_ptr + offs_h, acc_b1, sem="relaxed")
    tl.atomic_add(grad_w0_ptr + offs_c[:, None] * HP + offs_h[None, :], acc_w0, sem="relaxed")
    tl.atomic_add(grad_b0_ptr + offs_h, acc_b0, sem="relaxed")


def pad_dim(n: int) -> int:
    """Padded size of a matrix dimension for ``tl.dot``: a power of two, at least 16."""
    return max(16, triton.next_power_of_2(n))


def _launch_args(planes, coords, plane_index, points_per_plane, box_warp, tensors):
    T, three, H, W, C = planes.shape
    if three != 3 or not all(t.is_contiguous() for t in (planes, coords, *tensors)):
        raise ValueError("triplane_mlp kernels need contiguous planes [T, 3, H, W, C], coords, weights and biases")
    P = coords.shape[0]
    index = plane_index if plane_index is not None else coords  # dummy pointer when unused
    return P, H, W, C, index, dict(HAS_INDEX=plane_index is not None), 2.0 / box_warp


def triplane_mlp_forward(
    planes: torch.Tensor,  # [T, 3, H, W, C]
    coords: torch.Tensor,  # [P, 3] fp32
    plane_index: torch.Tensor | None,  # [P] int32
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor],  # W0 [CP, HP], Wh [*, HP, HP], Wo [HP, OP]
    biases: tuple[torch.Tensor, torch.Tensor, torch.Tensor],  # b0 [HP], bh [*, HP], bo [OP]
    *,
    n_hidden: int,
    n_out: int,
    points_per_plane: int,
    box_warp: float,
    eg3d_axes: bool,
    precision: str,
    block: int = 32,  # FWD_CONFIG
    num_warps: int = 4,
) -> torch.Tensor:  # [P, n_out]
    """Launch the forward kernel; returns ``[P, n_out]`` (sigma_raw, activated rgb)."""
    P, H, W, C, index, flags, scale = _launch_args(
        planes, coords, plane_index, points_per_plane, box_warp, (*weights, *biases)
    )
    w0, wh, wo = weights
    out = torch.empty(P, n_out, device=coords.device, dtype=torch.float32)
    if P == 0:
        return out
    grid = (triton.cdiv(P, block),)
    triplane_mlp_fwd_kernel[grid](
        planes, coords, index, w0, biases[0], wh, biases[1], wo, biases[2], out,
        P, points_per_plane, H, W, C, H * W * C, n_out, scale,
        CP=w0.shape[0], HP=w0.shape[1], OP=wo.shape[1], N_HIDDEN=n_hidden, EG3D_AXES=eg3d_axes,
        PRECISION=kernel_precision(precision), BLOCK=block, num_warps=num_warps, **flags,
    )
    return out


def triplane_mlp_backward(
    planes: torch.Tensor,  # [T, 3, H, W, C]
    coords: torch.Tensor,  # [P, 3] fp32
    plane_index: torch.Tensor | None,  # [P] int32
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    biases: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    grad_out: torch.Tensor,  # [P, n_out] fp32
    *,
    n_hidden: int,
    points_per_plane: int,
    box_warp: float,
    eg3d_axes: bool,
    precision: str,
    block: int = 16,  # BWD_CONFIG
    num_warps: int = 8,
    programs: int | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Launch the backward kernel; returns fp32 ``(grad_planes, grad_weights, grad_biases)``
    in the padded layouts of the inputs.

    Each program walks ``blocks_per_program`` consecutive blocks of ``block`` points and
    adds its weight gradients once, so there are about ``programs`` (default: 8 per SM)
    weight-gradient atomics per element instead of one per block."""
    P, H, W, C, index, flags, scale = _launch_args(
        planes, coords, plane_index, points_per_plane, box_warp, (*weights, *biases)
    )
    grad_planes = torch.zeros(planes.shape, device=planes.device, dtype=torch.float32)
    grad_w = tuple(torch.zeros_like(w, dtype=torch.float32) for w in weights)
    grad_b = tuple(torch.zeros_like(b, dtype=torch.float32) for b in biases)
    if P == 0:
        return grad_planes, grad_w, grad_b
    w0, wh, wo = weights
    n_blocks = triton.cdiv(P, block)
    if programs is None:
        programs = 8 * torch.cuda.get_device_properties(planes.device).multi_processor_count if planes.is_cuda else 4
    args = (
        planes, coords, index, w0, biases[0], wh, biases[1], wo, biases[2], grad_out.contiguous(),
        grad_planes, grad_w[0], grad_b[0], grad_w[1], grad_b[1], grad_w[2], grad_b[2],
        P, points_per_plane, H, W, C, H * W * C, grad_out.shape[1], scale,
    )
    meta = dict(CP=w0.shape[0], HP=w0.shape[1], OP=wo.shape[1], N_HIDDEN=n_hidden, EG3D_AXES=eg3d_axes,
                PRECISION=kernel_precision(precision), BLOCK=block, num_warps=num_warps, **flags)
    # Two specializations of one kernel: holding the weight-gradient accumulators and
    # the scatter's pointer tiles at once spills registers, so each pass does one job.
    per_program = triton.cdiv(n_blocks, max(1, min(programs, n_blocks)))
    triplane_mlp_bwd_kernel[(triton.cdiv(n_blocks, per_program),)](
        *args, per_program, WEIGHT_GRADS=True, PLANE_GRADS=False, **meta
    )
    triplane_mlp_bwd_kernel[(n_blocks,)](*args, 1, WEIGHT_GRADS=False, PLANE_GRADS=True, **meta)
    return grad_planes, grad_w, grad_b


FWD_CONFIG = dict(block=32, num_warps=4)
BWD_CONFIG = dict(block=16, num_warps=8)


def kernel_specs(fwd: dict | None = None, bwd: dict | None = None) -> list:
    """The specializations the AOT compile check builds (EG3D sizes: C 32, hidden 64), at
    the launch defaults unless ``fwd``/``bwd`` give ``block`` and ``num_warps``."""
    from tri3d.kernels.aot import KernelSpec

    specs = []
    common_scalars = {n: "i32" for n in ("P", "points_per_plane", "H", "W", "C", "NOUT")}
    common_scalars.update(plane_size="i64", coord_scale="fp32", blocks_per_program="i32")
    fwd, bwd = fwd or FWD_CONFIG, bwd or BWD_CONFIG
    for n_hidden in (1, 3):
        for plane_dtype in ("fp32", "bf16"):
            for precision in ("ieee", "tf32", "bf16") if plane_dtype == "fp32" else ("bf16",):
                constexprs = dict(CP=32, HP=64, OP=64, N_HIDDEN=n_hidden, EG3D_AXES=False, HAS_INDEX=False,
                                  PRECISION=precision)
                fp32 = ("coords_ptr", "w0_ptr", "b0_ptr", "wh_ptr", "bh_ptr", "wo_ptr", "bo_ptr")
                ptrs = {n: "fp32" for n in fp32} | {"planes_ptr": plane_dtype, "plane_index_ptr": "i32"}
                label = f"nh{n_hidden} planes={plane_dtype} dot={precision}"
                fwd_scalars = {k: v for k, v in common_scalars.items() if k != "blocks_per_program"}
                specs.append(KernelSpec(f"fwd {label}", triplane_mlp_fwd_kernel, ptrs | {"out_ptr": "fp32"},
                                        fwd_scalars, constexprs | {"BLOCK": fwd["block"]}, fwd["num_warps"]))
                grads = ("grad_out_ptr", "grad_planes_ptr", "grad_w0_ptr", "grad_b0_ptr", "grad_wh_ptr",
                         "grad_bh_ptr", "grad_wo_ptr", "grad_bo_ptr")
                for job, flags in (("weights", (True, False)), ("planes", (False, True))):
                    specs.append(KernelSpec(
                        f"bwd-{job} {label}", triplane_mlp_bwd_kernel, ptrs | {n: "fp32" for n in grads},
                        common_scalars,
                        constexprs | {"BLOCK": bwd["block"], "WEIGHT_GRADS": flags[0], "PLANE_GRADS": flags[1]},
                        bwd["num_warps"],
                    ))
    return specs
