"""Fused triplane sampling + decoder MLP: Triton kernels and their launch functions.

Per block of points the forward kernel projects each point onto the three planes,
gathers the 4 bilinear texels x C channels of each plane from a channels-last copy
``[T, 3, H, W, C]``, averages, runs the MLP with ``tl.dot`` and writes only the decoded
``[P, 1 + C_out]`` (sigma_raw, activated rgb). The last layer is split: rgb is a ``tl.dot``
``[HP, RP]`` with RP the rgb width padded (32 for EG3D's 32 features, not the 64 that
33 outputs would pad to) and sigma a per-point reduction against one weight column, so
neither its products nor its weight-gradient accumulator are padded. The backward
kernel, one launch, recomputes those activations from the inputs once, back-propagates
through the MLP, reduces weight and bias gradients per program (one atomic per program)
and scatters plane gradients with fp32 atomics. Nothing per point is stored between the
two.

Layout contract of the launch functions (the op layer builds these):
- ``planes``: ``[T, 3, H, W, C]`` contiguous, fp32/bf16/fp16.
- ``coords``: ``[P, 3]`` fp32 world coordinates.
- ``plane_index``: ``[P]`` int32 triplane of each point, or ``None`` for the layout where
  point ``p`` belongs to triplane ``p // points_per_plane``.
- ``weights``: ``(W0 [CP, HP], Wh [max(NH-1, 1), HP, HP], Wo [HP, 2 RP])`` fp32,
  ``x @ W`` orientation, zero-padded to powers of two >= 16; ``Wo``'s columns are the
  rgb outputs (``0 .. C_out - 1``, padded to RP) and then sigma (column RP); ``biases``
  likewise ``(b0 [HP], bh [max(NH-1, 1), HP], bo [2 RP])``.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from tri3d.kernels.common import dot as _common_dot
from tri3d.kernels.common import COMPILE_OPTIONS, fast_math
from tri3d.kernels.common import kernel_precision as _kernel_precision
from tri3d.kernels.common import sigmoid as _sigmoid
from tri3d.kernels.common import softplus as _softplus
from tri3d.kernels.common import softplus_slope as _softplus_slope

RGB_PAD = 1e-3
RGB_PAD_C = tl.constexpr(RGB_PAD)
PRECISIONS = ("ieee", "tf32", "bf16")


def kernel_precision(precision: str) -> str:
    """The PRECISION constexpr of the triplane kernels (ieee, tf32 or bf16 operands)."""
    return _kernel_precision(precision, PRECISIONS)


@triton.jit
def _load_matrix(ptr, R: tl.constexpr, K: tl.constexpr, STRIDE: tl.constexpr):
    """Load the first K columns of a row-major [R, STRIDE] fp32 matrix (the backward takes
    transposes of the loaded tile with ``tl.trans``)."""
    return tl.load(ptr + tl.arange(0, R)[:, None] * STRIDE + tl.arange(0, K)[None, :])


@triton.jit
def _dot(a, b, PRECISION: tl.constexpr):
    """``a @ b`` (common ``dot``), except a bf16 product that Triton may lower to a Hopper
    wgmma (64 rows or more) with a B operand under 64 columns (128 bytes a row): that one
    takes tf32 operands. With Triton 3.6 the forward's 32-column bf16 rgb product
    (``wgmma m64n32k16``) faulted with an illegal address on an H200 (2026-11-27,
    ``bench/RESULTS.md``) where the 64-column products beside it ran."""
    narrow_wgmma: tl.constexpr = (a.shape[0] >= 64) and (b.shape[1] < 64)  # Triton 3.3 refuses a and b and c
    if narrow_wgmma and PRECISION == "bf16":
        return _common_dot(a, b, "tf32")
    elif narrow_wgmma and PRECISION == "bf16_emulated":
        return _common_dot(a, b, "tf32_emulated")
    else:
        return _common_dot(a, b, PRECISION)


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
    plane_base,  # [BLOCK] int32 or int64 offset of this point's plane (texel offsets follow its width)
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
            off = plane_base + (yi.to(plane_base.dtype) * W + xi) * C  # the base's width
            val = tl.load(planes_ptr + off[:, None] + offs_c[None, :], mask=ok[:, None] & cmask, other=0.0)
            acc += wgt[:, None] * val.to(tl.float32)
    return acc


@triton.jit
def _scatter_plane(
    grad_ptr,  # *fp32 [T, 3, H, W, C]
    plane_base,  # [BLOCK] int32 or int64
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
            off = plane_base + (yi.to(plane_base.dtype) * W + xi) * C  # the base's width
            tl.atomic_add(grad_ptr + off[:, None] + offs_c[None, :], wgt[:, None] * g, mask=ok[:, None] & cmask,
                          sem="relaxed")


@triton.jit
def _block_rows(block_id, P, BLOCK: tl.constexpr):
    """Row numbers (int64) of a block's points and which of them exist."""
    rows64 = block_id.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return rows64, rows64 < P


@triton.jit
def _load_coords(coords_ptr, plane_index_ptr, block_id, P, BLOCK: tl.constexpr, HAS_INDEX: tl.constexpr):
    """A block's world coordinates and, with an index, each point's triplane (else 0)."""
    rows64, row_mask = _block_rows(block_id, P, BLOCK)
    x = tl.load(coords_ptr + rows64 * 3 + 0, mask=row_mask, other=0.0)
    y = tl.load(coords_ptr + rows64 * 3 + 1, mask=row_mask, other=0.0)
    z = tl.load(coords_ptr + rows64 * 3 + 2, mask=row_mask, other=0.0)
    if HAS_INDEX:
        tri = tl.load(plane_index_ptr + rows64, mask=row_mask, other=0)
    else:
        tri = tl.zeros((BLOCK,), dtype=tl.int32)
    return x, y, z, tri


@triton.jit
def _plane_base(
    tri, block_id, points_per_plane, plane_size,
    BLOCK: tl.constexpr, HAS_INDEX: tl.constexpr, ROWS_I32: tl.constexpr, TEXELS_I32: tl.constexpr,
):
    """Offset of each point's triplane: int32 when every texel offset fits (64-bit address
    arithmetic costs about twice the instructions, and the gathers and scatters form 12
    offsets per point). Without an index the triplane is the row // points_per_plane."""
    if not HAS_INDEX:
        if ROWS_I32:  # a 32-bit division is inline; a 64-bit one calls a ~80-instruction routine
            tri = (block_id * BLOCK + tl.arange(0, BLOCK)) // points_per_plane
        else:
            tri = (block_id.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)) // points_per_plane
    if TEXELS_I32:
        return tri.to(tl.int32) * 3 * plane_size
    else:
        return tri.to(tl.int64) * 3 * plane_size


@triton.jit
def _point_setup(
    coords_ptr, plane_index_ptr, block_id, P, points_per_plane, coord_scale, plane_size,
    BLOCK: tl.constexpr, HAS_INDEX: tl.constexpr, ROWS_I32: tl.constexpr, TEXELS_I32: tl.constexpr,
):
    """Rows of a block, their normalized coordinates and their triplane's base offset."""
    rows64, row_mask = _block_rows(block_id, P, BLOCK)
    x, y, z, tri = _load_coords(coords_ptr, plane_index_ptr, block_id, P, BLOCK, HAS_INDEX)
    base = _plane_base(tri, block_id, points_per_plane, plane_size, BLOCK, HAS_INDEX, ROWS_I32, TEXELS_I32)
    return rows64, row_mask, x * coord_scale, y * coord_scale, z * coord_scale, base


@triton.jit
def _load_grad_out(grad_out_ptr, block_id, P, NOUT, RP: tl.constexpr, BLOCK: tl.constexpr):
    """A block's incoming gradient: of the rgb outputs ``[BLOCK, RP]`` (0 past ``NOUT - 1``)
    and of sigma_raw ``[BLOCK]``."""
    rows64, row_mask = _block_rows(block_id, P, BLOCK)
    offs_r = tl.arange(0, RP)
    rgb_mask = row_mask[:, None] & (offs_r[None, :] < NOUT - 1)
    g_rgb = tl.load(grad_out_ptr + rows64[:, None] * NOUT + 1 + offs_r[None, :], mask=rgb_mask, other=0.0)
    g_sigma = tl.load(grad_out_ptr + rows64 * NOUT, mask=row_mask, other=0.0)
    return g_rgb, g_sigma


@triton.jit
def triplane_mlp_fwd_kernel(
    planes_ptr,  # *fp32|bf16|fp16 [T, 3, H, W, C] channels-last planes
    coords_ptr,  # *fp32 [P, 3] world coordinates
    plane_index_ptr,  # *int32 [P] triplane of each point (read only when HAS_INDEX)
    w0_ptr,  # *fp32 [CP, HP] first layer, x @ W orientation
    b0_ptr,  # *fp32 [HP]
    wh_ptr,  # *fp32 [NH-1, HP, HP] hidden -> hidden layers
    bh_ptr,  # *fp32 [NH-1, HP]
    wo_ptr,  # *fp32 [HP, 2 RP] output layer: rgb columns, then sigma's (column RP)
    bo_ptr,  # *fp32 [2 RP]
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
    RP: tl.constexpr,  # padded rgb width (Wo has 2 RP columns)
    N_HIDDEN: tl.constexpr,  # hidden (softplus) layers, 1..3
    EG3D_AXES: tl.constexpr,  # third plane reads (z, x) instead of (y, z)
    HAS_INDEX: tl.constexpr,  # points carry a triplane index
    ROWS_I32: tl.constexpr,  # P + BLOCK <= 2^31: a row's triplane in 32-bit arithmetic
    TEXELS_I32: tl.constexpr,  # every texel offset of the planes fits int32 (texels_fit_i32)
    PRECISION: tl.constexpr,  # "ieee" | "tf32" | "bf16" MLP dot operands
    FAST_MATH: tl.constexpr,  # MUFU lg2/rcp approximations (not under the interpreter)
    BLOCK: tl.constexpr,  # points per program
):
    pid = tl.program_id(0)
    rows64, row_mask, x, y, z, base = _point_setup(
        coords_ptr, plane_index_ptr, pid, P, points_per_plane, coord_scale, plane_size, BLOCK, HAS_INDEX, ROWS_I32,
        TEXELS_I32,
    )
    offs_c = tl.arange(0, CP)
    feat = tl.zeros((BLOCK, CP), dtype=tl.float32)
    for k in tl.static_range(3):
        u, v = _plane_uv(x, y, z, k, EG3D_AXES)
        feat += _gather_plane(planes_ptr, base + k * plane_size, u, v, H, W, C, offs_c, row_mask)
    feat = feat * (1.0 / 3.0)

    offs_h = tl.arange(0, HP)
    a = _softplus(_dot(feat, _load_matrix(w0_ptr, CP, HP, HP), PRECISION) + tl.load(b0_ptr + offs_h)[None, :],
                  FAST_MATH)
    for layer in tl.static_range(N_HIDDEN - 1):
        w = _load_matrix(wh_ptr + layer * HP * HP, HP, HP, HP)
        a = _softplus(_dot(a, w, PRECISION) + tl.load(bh_ptr + layer * HP + offs_h)[None, :], FAST_MATH)
    offs_r = tl.arange(0, RP)
    o = _dot(a, _load_matrix(wo_ptr, HP, RP, 2 * RP), PRECISION) + tl.load(bo_ptr + offs_r)[None, :]
    rgb = _sigmoid(o, FAST_MATH) * (1.0 + 2.0 * RGB_PAD_C) - RGB_PAD_C
    sigma = tl.sum(a * tl.load(wo_ptr + offs_h * (2 * RP) + RP)[None, :], axis=1) + tl.load(bo_ptr + RP)
    tl.store(out_ptr + rows64[:, None] * NOUT + 1 + offs_r[None, :], rgb,
             mask=row_mask[:, None] & (offs_r[None, :] < NOUT - 1))
    tl.store(out_ptr + rows64 * NOUT, sigma, mask=row_mask)



@triton.jit
def triplane_mlp_bwd_kernel(
    planes_ptr,  # *fp32|bf16|fp16 [T, 3, H, W, C] channels-last planes
    coords_ptr,  # *fp32 [P, 3]
    plane_index_ptr,  # *int32 [P] (read only when HAS_INDEX)
    w0_ptr,  # *fp32 [CP, HP]
    b0_ptr,  # *fp32 [HP]
    wh_ptr,  # *fp32 [NH-1, HP, HP]
    bh_ptr,  # *fp32 [NH-1, HP]
    wo_ptr,  # *fp32 [HP, 2 RP] rgb columns, then sigma's
    bo_ptr,  # *fp32 [2 RP]
    grad_out_ptr,  # *fp32 [P, NOUT] incoming gradient of the decoded output
    grad_planes_ptr,  # *fp32 [T, 3, H, W, C] plane gradient (atomic adds)
    grad_w0_ptr,  # *fp32 [CP, HP] (one atomic add per program)
    grad_b0_ptr,  # *fp32 [HP]
    grad_wh_ptr,  # *fp32 [NH-1, HP, HP]
    grad_bh_ptr,  # *fp32 [NH-1, HP]
    grad_wo_ptr,  # *fp32 [HP, 2 RP]
    grad_bo_ptr,  # *fp32 [2 RP]
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
    RP: tl.constexpr,  # padded rgb width (Wo has 2 RP columns)
    N_HIDDEN: tl.constexpr,  # hidden layers, 1..3
    EG3D_AXES: tl.constexpr,  # plane order
    HAS_INDEX: tl.constexpr,  # points carry a triplane index
    ROWS_I32: tl.constexpr,  # P + BLOCK <= 2^31: a row's triplane in 32-bit arithmetic
    TEXELS_I32: tl.constexpr,  # every texel offset of the planes fits int32 (texels_fit_i32)
    PRECISION: tl.constexpr,  # MLP dot operand precision
    FAST_MATH: tl.constexpr,  # MUFU lg2/rcp approximations (not under the interpreter)
    WEIGHT_GRADS: tl.constexpr,  # accumulate decoder weight/bias gradients
    PLANE_GRADS: tl.constexpr,  # scatter plane gradients
    PREFETCH: tl.constexpr,  # load the next block's coordinates and incoming gradient during this one
    BLOCK: tl.constexpr,  # points per block
):
    pid = tl.program_id(0)
    offs_c = tl.arange(0, CP)
    offs_h = tl.arange(0, HP)
    offs_r = tl.arange(0, RP)
    # Weight/bias gradients are accumulated over this program's blocks, then added once.
    # Sums over points (biases, sigma's weights) stay [BLOCK, *] tiles added element-wise
    # and are reduced once after the loop: a reduction per block costs shuffles and a
    # barrier (SASS model, tf32, 3 hidden layers: 574 warp-instructions per point fwd + bwd
    # with these and 32-bit texel offsets, 660 without).
    acc_w0 = tl.zeros((CP, HP), dtype=tl.float32)
    acc_b0 = tl.zeros((BLOCK, HP), dtype=tl.float32)
    acc_w1 = tl.zeros((HP, HP), dtype=tl.float32)
    acc_b1 = tl.zeros((BLOCK, HP), dtype=tl.float32)
    acc_w2 = tl.zeros((HP, HP), dtype=tl.float32)
    acc_b2 = tl.zeros((BLOCK, HP), dtype=tl.float32)
    acc_wr = tl.zeros((HP, RP), dtype=tl.float32)
    acc_br = tl.zeros((BLOCK, RP), dtype=tl.float32)
    acc_ws = tl.zeros((BLOCK, HP), dtype=tl.float32)
    acc_bs = tl.zeros((BLOCK,), dtype=tl.float32)
    # The decoder's weights, loaded once per program (the loop reads them as dot operands).
    # Biases and sigma's weight column are read per block (cached loads) instead: held
    # across the loop they would take registers the accumulators need (the backward spills).
    w0 = _load_matrix(w0_ptr, CP, HP, HP)
    if N_HIDDEN >= 2:
        w1 = _load_matrix(wh_ptr, HP, HP, HP)
    if N_HIDDEN >= 3:
        w2 = _load_matrix(wh_ptr + HP * HP, HP, HP, HP)
    wr = _load_matrix(wo_ptr, HP, RP, 2 * RP)
    # With PREFETCH a block's first loads (its coordinates; its incoming gradient) are issued
    # during the block before, ahead of that block's scatter: issued where they are used,
    # they are the longest waits (ncu, H200, 2026-11-28: 9% of the stall samples, two
    # programs per SM to hide them). Issued at the top of the block before they spill (SASS
    # model, tf32: 7 local accesses per point); ahead of the scatter they cost 1.
    first = pid * blocks_per_program
    if PREFETCH:
        x_next, y_next, z_next, tri_next = _load_coords(coords_ptr, plane_index_ptr, first, P, BLOCK, HAS_INDEX)
        g_rgb_next, g_sigma_next = _load_grad_out(grad_out_ptr, first, P, NOUT, RP, BLOCK)
    for it in range(0, blocks_per_program):
        block_id = first + it
        rows64, row_mask = _block_rows(block_id, P, BLOCK)
        if PREFETCH:
            x, y, z, tri = x_next, y_next, z_next, tri_next
            g_rgb_in, g_sigma = g_rgb_next, g_sigma_next
        else:
            x, y, z, tri = _load_coords(coords_ptr, plane_index_ptr, block_id, P, BLOCK, HAS_INDEX)
        x = x * coord_scale
        y = y * coord_scale
        z = z * coord_scale
        base = _plane_base(tri, block_id, points_per_plane, plane_size, BLOCK, HAS_INDEX, ROWS_I32, TEXELS_I32)
        # Recompute the forward pass, keeping each layer's softplus only: its derivative
        # (sigmoid) is taken from it on the way back, so no slope tiles stay live.
        feat = tl.zeros((BLOCK, CP), dtype=tl.float32)
        for k in tl.static_range(3):
            u, v = _plane_uv(x, y, z, k, EG3D_AXES)
            feat += _gather_plane(planes_ptr, base + k * plane_size, u, v, H, W, C, offs_c, row_mask)
        feat = feat * (1.0 / 3.0)
        z0 = _dot(feat, w0, PRECISION) + tl.load(b0_ptr + offs_h)[None, :]
        a0 = _softplus(z0, FAST_MATH)
        a_last = a0
        if N_HIDDEN >= 2:
            z1 = _dot(a0, w1, PRECISION) + tl.load(bh_ptr + offs_h)[None, :]
            a1 = _softplus(z1, FAST_MATH)
            a_last = a1
        if N_HIDDEN >= 3:
            z2 = _dot(a1, w2, PRECISION) + tl.load(bh_ptr + HP + offs_h)[None, :]
            a_last = _softplus(z2, FAST_MATH)
        o = _dot(a_last, wr, PRECISION) + tl.load(bo_ptr + offs_r)[None, :]

        # Output activations: rgb = sigmoid(o) * (1 + 2 pad) - pad; sigma_raw is linear.
        if not PREFETCH:
            g_rgb_in, g_sigma = _load_grad_out(grad_out_ptr, block_id, P, NOUT, RP, BLOCK)
        s = _sigmoid(o, FAST_MATH)
        g_rgb = g_rgb_in * s * (1.0 - s) * (1.0 + 2.0 * RGB_PAD_C)

        # Back through the layers, last to first.
        if WEIGHT_GRADS:
            acc_wr += _dot(tl.trans(a_last), g_rgb, PRECISION)
            acc_br += g_rgb
            acc_ws += a_last * g_sigma[:, None]
            acc_bs += g_sigma
        g = _dot(g_rgb, tl.trans(wr), PRECISION)
        w_sigma = tl.load(wo_ptr + offs_h * (2 * RP) + RP)
        g = (g + g_sigma[:, None] * w_sigma[None, :]) * _softplus_slope(a_last)  # gradient w.r.t. z_last
        if N_HIDDEN >= 3:
            if WEIGHT_GRADS:
                acc_w2 += _dot(tl.trans(a1), g, PRECISION)
                acc_b2 += g
            g = _dot(g, tl.trans(w2), PRECISION) * _softplus_slope(a1)
        if N_HIDDEN >= 2:
            if WEIGHT_GRADS:
                acc_w1 += _dot(tl.trans(a0), g, PRECISION)
                acc_b1 += g
            g = _dot(g, tl.trans(w1), PRECISION) * _softplus_slope(a0)
        if WEIGHT_GRADS:
            acc_w0 += _dot(tl.trans(feat), g, PRECISION)
            acc_b0 += g
        if PREFETCH:  # the next block's inputs (past the last point: masked, unused)
            x_next, y_next, z_next, tri_next = _load_coords(coords_ptr, plane_index_ptr, block_id + 1, P, BLOCK,
                                                            HAS_INDEX)
            g_rgb_next, g_sigma_next = _load_grad_out(grad_out_ptr, block_id + 1, P, NOUT, RP, BLOCK)
        if PLANE_GRADS:  # scatter to the 4 texels of each plane
            g_feat = _dot(g, tl.trans(w0), PRECISION) * (1.0 / 3.0)
            for k in tl.static_range(3):
                u, v = _plane_uv(x, y, z, k, EG3D_AXES)
                _scatter_plane(grad_planes_ptr, base + k * plane_size, u, v, H, W, C, offs_c, row_mask, g_feat)

    if WEIGHT_GRADS:
        _add_weight_grads(
            grad_w0_ptr, grad_b0_ptr, grad_wh_ptr, grad_bh_ptr, grad_wo_ptr, grad_bo_ptr,
            acc_w0, tl.sum(acc_b0, axis=0), acc_w1, tl.sum(acc_b1, axis=0), acc_w2, tl.sum(acc_b2, axis=0),
            acc_wr, tl.sum(acc_br, axis=0), tl.sum(acc_ws, axis=0), tl.sum(acc_bs, axis=0, keep_dims=True),
            CP, HP, RP, N_HIDDEN,
        )


@triton.jit
def _add_weight_grads(
    grad_w0_ptr, grad_b0_ptr, grad_wh_ptr, grad_bh_ptr, grad_wo_ptr, grad_bo_ptr,
    acc_w0, acc_b0, acc_w1, acc_b1, acc_w2, acc_b2, acc_wr, acc_br, acc_ws, acc_bs,
    CP: tl.constexpr, HP: tl.constexpr, RP: tl.constexpr, N_HIDDEN: tl.constexpr,
):
    """One fp32 atomic add per element of this program's accumulated weight gradients."""
    offs_c = tl.arange(0, CP)
    offs_h = tl.arange(0, HP)
    offs_r = tl.arange(0, RP)
    hh = offs_h[:, None] * HP + offs_h[None, :]
    tl.atomic_add(grad_wo_ptr + offs_h[:, None] * (2 * RP) + offs_r[None, :], acc_wr, sem="relaxed")
    tl.atomic_add(grad_bo_ptr + offs_r, acc_br, sem="relaxed")
    tl.atomic_add(grad_wo_ptr + offs_h * (2 * RP) + RP, acc_ws, sem="relaxed")
    tl.atomic_add(grad_bo_ptr + RP + tl.arange(0, 1), acc_bs, sem="relaxed")
    if N_HIDDEN >= 3:
        tl.atomic_add(grad_wh_ptr + HP * HP + hh, acc_w2, sem="relaxed")
        tl.atomic_add(grad_bh_ptr + HP + offs_h, acc_b2, sem="relaxed")
    if N_HIDDEN >= 2:
        tl.atomic_add(grad_wh_ptr + hh, acc_w1, sem="relaxed")
        tl.atomic_add(grad_bh_ptr + offs_h, acc_b1, sem="relaxed")
    tl.atomic_add(grad_w0_ptr + offs_c[:, None] * HP + offs_h[None, :], acc_w0, sem="relaxed")
    tl.atomic_add(grad_b0_ptr + offs_h, acc_b0, sem="relaxed")


# Forward, per architecture and dot precision. On sm_90 a 64-point block of 4 warps is one
# warpgroup, so each layer is a wgmma (SASS model, 3 hidden layers: tf32 212 warp-
# instructions per point, 32 x 4 229, 32 x 2 209; bf16 175 against 196-236). Measured
# (bench/tune_triplane.py --jobs forward, H200, eg3d size, uniform points): tf32 runs
# fastest as 128 x 8 (1.423 / 1.369 ms against 1.534 / 1.466 for 64 x 4 on the 2026-11-27
# / 11-28 leases), bf16 as 64 x 4 (0.950 / 0.894 ms; 128 x 8 0.972 / 0.927). The exact-fp32
# path (tests) and sm_80 (not measured) keep 64 x 4.
FWD_CONFIG = {
    90: {"ieee": dict(block=64, num_warps=4), "tf32": dict(block=128, num_warps=8),
         "bf16": dict(block=64, num_warps=4)},
    80: {precision: dict(block=64, num_warps=4) for precision in PRECISIONS},
}
# Backward, one launch per decode, per architecture and hidden-layer count: the
# weight-gradient accumulators stay in registers across a program's blocks beside the
# scatter's tiles. sm_90, 3 hidden layers: measured (bench/tune_triplane.py, H200,
# 2026-11-26, 3.15 M points, tf32) 16 points x 4 warps at 16 programs per SM runs the
# backward in 8.48 ms against 11.18 ms for 16 x 8 at 8 per SM (the SASS model's pick: no
# stack), 16.7-25 ms for 32-point blocks and 15.4-15.7 ms for 64. 16 x 4 spills (255
# registers and 248-336 bytes of stack then, 40 since de43290) but two independent 4-warp
# programs per SM hide each other's barrier and gather latency, where one 8-warp program
# (8 warps per SM; ncu: 0.23 instructions issued per cycle per scheduler) waits on itself.
# 2 hidden layers likewise (tf32 6.07 against 9.25 ms, bf16 5.49 against 7.72 ms); 3 with
# bf16 7.92 against 9.22 ms. 1 hidden layer: 16 x 4 fits without spills.
# Each program loads the decoder's weights once, before its loop (Triton keeps them in
# shared memory as dot operands: 110 KB per 16 x 4 program with tf32 dots, 54 KB with bf16).
# Re-measured with them resident (H200, 2026-11-28): 16 x 4 5.65 ms tf32 / 4.43 ms bf16;
# every register cap (168, 128; 16 x 4 and 16 x 8) slower, 16 x 8 at 128 registers (16
# warps per SM) 7.72 / 5.84 ms: the spills cost more than the warps hide.
# sm_80 allocates differently: 8 warps, and one pipelining stage since the loop loads no
# weights (with two, 2-3 layers spill 8-16 bytes in some precisions; with one, none do, in
# at most 114 KB of the A100's 163 KB per block); not measured.
BWD_CONFIG = {
    90: {1: dict(block=16, num_warps=4, num_stages=1), 2: dict(block=16, num_warps=4, num_stages=1),
         3: dict(block=16, num_warps=4, num_stages=1)},
    80: {1: dict(block=16, num_warps=8, num_stages=1), 2: dict(block=16, num_warps=8, num_stages=1),
         3: dict(block=16, num_warps=8, num_stages=1)},
}
# Persistent programs of the backward per SM (each adds its weight gradients once):
# 16 measured 1-2% faster than 8 for 16 x 4 (same sweep).
BWD_PROGRAMS_PER_SM = 16


def config_arch(device: torch.device) -> int:
    """The ``BWD_CONFIG`` architecture of a CUDA device: 90 from Hopper on, else 80 (and 90
    for the interpreter, whose programs ignore warps and stages)."""
    if device.type != "cuda":
        return 90
    return 90 if torch.cuda.get_device_capability(device)[0] >= 9 else 80


def fwd_config(precision: str, arch: int = 90) -> dict:
    """The forward launch config for dot operands ``precision`` (ieee, tf32, bf16) on ``arch``."""
    return FWD_CONFIG[arch][precision]


def bwd_config(n_hidden: int, arch: int = 90) -> dict:
    """The backward launch config for ``n_hidden`` hidden layers on ``arch`` (80 or 90)."""
    return BWD_CONFIG[arch][n_hidden]


# Fields of a launch config that are kernel constexprs, not Triton launch options.
KERNEL_FIELDS = ("block", "prefetch")


def launch_options(config: dict) -> dict:
    """The Triton launch options of a launch config (all but ``KERNEL_FIELDS``) with the
    project's compile options."""
    return {k: v for k, v in config.items() if k not in KERNEL_FIELDS} | COMPILE_OPTIONS


def rows_fit_i32(points: int, block: int) -> bool:
    """Whether every row number a launch of ``block``-point programs forms fits int32."""
    return points + block <= 2**31


def texels_fit_i32(T: int, H: int, W: int, C: int) -> bool:
    """Whether every texel offset the kernels form in planes ``[T, 3, H, W, C]`` fits int32:
    a bilinear corner lies in [-2, W + 1] x [-2, H + 1] (coordinates are clamped), so the
    largest offset is ``T 3 H W C + (2 W + 2) C - 1`` and the smallest ``-(2 W + 2) C``."""
    return T * 3 * H * W * C + (2 * W + 2) * C <= 2**31


def pad_dim(n: int) -> int:
    """Padded size of a matrix dimension for ``tl.dot``: a power of two, at least 16."""
    return max(16, triton.next_power_of_2(n))


def _launch_args(planes, coords, plane_index, points_per_plane, box_warp, tensors):
    T, three, H, W, C = planes.shape
    if three != 3 or not all(t.is_contiguous() for t in (planes, coords, *tensors)):
        raise ValueError("triplane_mlp kernels need contiguous planes [T, 3, H, W, C], coords, weights and biases")
    P = coords.shape[0]
    index = plane_index if plane_index is not None else coords  # dummy pointer when unused
    flags = dict(HAS_INDEX=plane_index is not None, TEXELS_I32=texels_fit_i32(T, H, W, C))
    return P, H, W, C, index, flags, 2.0 / box_warp


def triplane_mlp_forward(
    planes: torch.Tensor,  # [T, 3, H, W, C]
    coords: torch.Tensor,  # [P, 3] fp32
    plane_index: torch.Tensor | None,  # [P] int32
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor],  # W0 [CP, HP], Wh [*, HP, HP], Wo [HP, 2 RP]
    biases: tuple[torch.Tensor, torch.Tensor, torch.Tensor],  # b0 [HP], bh [*, HP], bo [2 RP]
    *,
    n_hidden: int,
    n_out: int,
    points_per_plane: int,
    box_warp: float,
    eg3d_axes: bool,
    precision: str,
    config: dict | None = None,  # block / num_warps (default fwd_config for the precision and device)
) -> torch.Tensor:  # [P, n_out]
    """Launch the forward kernel; returns ``[P, n_out]`` (sigma_raw, activated rgb)."""
    P, H, W, C, index, flags, scale = _launch_args(
        planes, coords, plane_index, points_per_plane, box_warp, (*weights, *biases)
    )
    w0, wh, wo = weights
    out = torch.empty(P, n_out, device=coords.device, dtype=torch.float32)
    if P == 0:
        return out
    cfg = config or fwd_config(precision, config_arch(coords.device))
    grid = (triton.cdiv(P, cfg["block"]),)
    triplane_mlp_fwd_kernel[grid](
        planes, coords, index, w0, biases[0], wh, biases[1], wo, biases[2], out,
        P, points_per_plane, H, W, C, H * W * C, n_out, scale,
        CP=w0.shape[0], HP=w0.shape[1], RP=wo.shape[1] // 2, N_HIDDEN=n_hidden, EG3D_AXES=eg3d_axes,
        PRECISION=kernel_precision(precision), FAST_MATH=fast_math(), BLOCK=cfg["block"],
        ROWS_I32=rows_fit_i32(P, cfg["block"]), **launch_options(cfg), **flags,
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
    plane_grads: bool = True,  # scatter plane gradients (else grad_planes stays zero)
    weight_grads: bool = True,  # reduce decoder weight / bias gradients (else they stay zero)
    config: dict | None = None,  # block / num_warps / num_stages / prefetch (default bwd_config for the device)
    programs: int | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Launch the backward kernel once; returns fp32 ``(grad_planes, grad_weights,
    grad_biases)`` in the padded layouts of the inputs.

    Each program walks ``blocks_per_program`` consecutive blocks of ``block`` points and
    adds its weight gradients once, so there are about ``programs`` (default: BWD_PROGRAMS_PER_SM per SM)
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
    cfg = config or bwd_config(n_hidden, config_arch(planes.device))
    if programs is None:
        sms = torch.cuda.get_device_properties(planes.device).multi_processor_count if planes.is_cuda else None
        programs = BWD_PROGRAMS_PER_SM * sms if sms else 4
    per_program, n_programs = program_partition(triton.cdiv(P, cfg["block"]), programs)
    triplane_mlp_bwd_kernel[(n_programs,)](
        planes, coords, index, w0, biases[0], wh, biases[1], wo, biases[2], grad_out.contiguous(),
        grad_planes, grad_w[0], grad_b[0], grad_w[1], grad_b[1], grad_w[2], grad_b[2],
        P, points_per_plane, H, W, C, H * W * C, grad_out.shape[1], scale, per_program,
        CP=w0.shape[0], HP=w0.shape[1], RP=wo.shape[1] // 2, N_HIDDEN=n_hidden, EG3D_AXES=eg3d_axes,
        PRECISION=kernel_precision(precision), FAST_MATH=fast_math(), WEIGHT_GRADS=weight_grads,
        PLANE_GRADS=plane_grads, PREFETCH=cfg.get("prefetch", False), BLOCK=cfg["block"],
        ROWS_I32=rows_fit_i32(P, cfg["block"]), **launch_options(cfg), **flags,
    )
    return grad_planes, grad_w, grad_b


def program_partition(n_blocks: int, programs: int) -> tuple[int, int]:
    """``(blocks per program, programs launched)`` of the backward launch."""
    per_program = triton.cdiv(n_blocks, max(1, min(programs, n_blocks)))
    return per_program, triton.cdiv(n_blocks, per_program)


H100_SMS = 132

# One decode call of the ``imagenet`` preset's render: batch 8, 64x64 rays x 3 views, 48
# samples per ray (coarse or fine), planes 3 x 32 x 256 x 256, decoder 32 -> 64 (x3) -> 33.
IMAGENET_CALL = dict(points=8 * 64 * 64 * 3 * 48, points_per_plane=64 * 64 * 3 * 48, H=256, W=256, C=32,
                     hidden=64, n_out=33)


def launch_specs(
    *,
    points: int,  # P of the launch
    points_per_plane: int,  # points per triplane (the layout without an index)
    H: int,  # plane height
    W: int,  # plane width
    C: int,  # plane channels
    hidden: int,  # decoder width
    n_out: int,  # 1 + colour channels
    n_hidden: int,  # hidden layers
    precision: str,  # dot operands: ieee | tf32 | bf16
    plane_dtype: str = "fp32",  # planes' element type
    box_warp: float = 1.0,
    programs: int = BWD_PROGRAMS_PER_SM * H100_SMS,  # the backward's default on an H100
    fwd: dict | None = None,  # launch config of the forward, every arch (default FWD_CONFIG's per arch)
    bwd: dict | None = None,  # launch config of the backward, every arch (default BWD_CONFIG's per arch)
) -> list:
    """The specializations (forward, and backward with plane and weight gradients, each per
    distinct launch config of the architectures) that Triton's JIT compiles when
    ``triplane_mlp_forward`` / ``_backward`` launch at these sizes without a plane index:
    the same scalars, the same value-1 and divisibility specializations, the same partition
    of the backward's blocks."""
    from tri3d.kernels.aot import launch_spec

    pointers = dict(planes_ptr=plane_dtype, coords_ptr="fp32", plane_index_ptr="fp32",  # coords as the dummy index
                    w0_ptr="fp32", b0_ptr="fp32", wh_ptr="fp32", bh_ptr="fp32", wo_ptr="fp32", bo_ptr="fp32")
    scalars = dict(P=points, points_per_plane=points_per_plane, H=H, W=W, C=C, plane_size=H * W * C, NOUT=n_out,
                   coord_scale=2.0 / box_warp)
    constexprs = dict(CP=pad_dim(C), HP=pad_dim(hidden), RP=pad_dim(n_out - 1), N_HIDDEN=n_hidden, EG3D_AXES=False,
                      HAS_INDEX=False, TEXELS_I32=texels_fit_i32(-(-points // points_per_plane), H, W, C),
                      PRECISION=kernel_precision(precision), FAST_MATH=fast_math())
    label = f"nh{n_hidden} planes={plane_dtype} dot={precision}"
    specs = []
    fwd_groups = _archs_by_config(lambda arch: fwd or fwd_config(precision, arch))
    for cfg, archs in fwd_groups:
        values = pointers | scalars | constexprs | dict(out_ptr="fp32", BLOCK=cfg["block"],
                                                        ROWS_I32=rows_fit_i32(points, cfg["block"]))
        specs.append(launch_spec(f"fwd {label}{_where(archs, fwd_groups)}", triplane_mlp_fwd_kernel, values,
                                 **launch_options(cfg), archs=archs))
    grads = dict.fromkeys(("grad_out_ptr", "grad_planes_ptr", "grad_w0_ptr", "grad_b0_ptr", "grad_wh_ptr",
                           "grad_bh_ptr", "grad_wo_ptr", "grad_bo_ptr"), "fp32")
    bwd_groups = _archs_by_config(lambda arch: bwd or bwd_config(n_hidden, arch))
    for cfg, archs in bwd_groups:
        per_program = program_partition(triton.cdiv(points, cfg["block"]), programs)[0]
        values = pointers | grads | scalars | constexprs | dict(
            blocks_per_program=per_program, BLOCK=cfg["block"], ROWS_I32=rows_fit_i32(points, cfg["block"]),
            WEIGHT_GRADS=True, PLANE_GRADS=True, PREFETCH=cfg.get("prefetch", False))
        specs.append(launch_spec(f"bwd {label}{_where(archs, bwd_groups)}", triplane_mlp_bwd_kernel, values,
                                 **launch_options(cfg), archs=archs))
    return specs


def _archs_by_config(config_of) -> list[tuple[dict, tuple[int, ...]]]:
    """Each distinct launch config ``config_of(arch)`` gives over the architectures, with the
    architectures that launch it (one AOT spec per distinct config)."""
    groups: dict[str, tuple[dict, list[int]]] = {}
    for arch in sorted(BWD_CONFIG):
        config = config_of(arch)
        groups.setdefault(repr(config), (config, []))[1].append(arch)
    return [(config, tuple(archs)) for config, archs in groups.values()]


def _where(archs: tuple[int, ...], groups: list) -> str:
    """A spec name's architecture suffix, where the configs differ between architectures."""
    return "" if len(groups) == 1 else " " + "/".join(f"sm_{arch}" for arch in archs)


def kernel_specs(fwd: dict | None = None, bwd: dict | None = None) -> list:
    """The specializations the AOT compile check builds: those a decode call of the
    ``imagenet`` render launches, for 1 and 3 hidden layers and every operand precision
    (fp32 planes; bf16 planes, which bf16 training passes, with tf32 or bf16 operands),
    at the launch defaults unless ``fwd`` / ``bwd`` give other launch configs."""
    specs = []
    for n_hidden in (1, 3):
        for plane_dtype in ("fp32", "bf16"):
            for precision in ("ieee", "tf32", "bf16") if plane_dtype == "fp32" else ("tf32", "bf16"):
                specs += launch_specs(**IMAGENET_CALL, n_hidden=n_hidden, precision=precision,
                                      plane_dtype=plane_dtype, fwd=fwd, bwd=bwd)
    return specs
