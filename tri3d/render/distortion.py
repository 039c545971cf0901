"""How far each ray's compositing weights are from sitting on one surface.

Mip-NeRF 360's distortion loss (Barron et al. 2022, eq. 15), over the compositor's
intervals ``[d_i, d_i+1]`` with weights ``w_i`` (midpoints ``m_i``, widths ``delta_i``):

    L = sum_i sum_j w_i w_j |m_i - m_j|  +  1/3 sum_i w_i^2 delta_i

in units of the ray's depth range (``far - near``). It is 0 for an empty ray, small when
the weight sits in one thin interval (a surface) and large when it is spread along the
ray (fog, whose expected depth is its middle from every view: the "flat card" a depth
judge sees). Sorted midpoints make the double sum linear in the samples:
``sum_ij w_i w_j |m_i - m_j| = 2 sum_i w_i (m_i W_i - P_i)`` with ``W_i = sum_{j<i} w_j``
and ``P_i = sum_{j<i} w_j m_j``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from tri3d.ops._checks import check_same_size, check_tensor
from tri3d.render.sampling import check_near_far


def ray_distortion(
    weights: Tensor,  # [B, R, S-1, 1] the composite's interval weights
    depths: Tensor,  # [B, R, S, 1] sorted sample depths
    near: float,
    far: float,
) -> Tensor:  # [B, R, 1]
    """Mip-NeRF 360's distortion of every ray (module doc), differentiable in ``weights``."""
    check_near_far(near, far)
    check_tensor("weights", weights, ("B", "R", "I", 1))
    check_tensor("depths", depths, ("B", "R", "S", 1))
    for dim in range(2):
        check_same_size(("weights", "depths"), (weights, depths), (dim, dim))
    if depths.shape[2] != weights.shape[2] + 1:
        raise ValueError(f"depths must hold one more sample per ray than weights has intervals, got "
                         f"{depths.shape[2]} samples and {weights.shape[2]} intervals")
    scaled = depths.to(weights.dtype) / (far - near)
    mid = (scaled[:, :, 1:] + scaled[:, :, :-1]) / 2
    width = scaled[:, :, 1:] - scaled[:, :, :-1]
    moment = weights * mid
    weight_before = torch.cumsum(weights, dim=2) - weights
    moment_before = torch.cumsum(moment, dim=2) - moment
    between = 2 * (weights * (mid * weight_before - moment_before)).sum(dim=2)
    within = (weights.square() * width).sum(dim=2) / 3
    return between + within
