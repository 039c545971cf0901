"""Camera model: OpenCV cam2world poses on a sphere around the origin, normalized intrinsics.

Conventions (DESIGN.md): cam2world ``[..., 4, 4]`` with the camera looking down its +z
axis, x right, y down; world up is +y. Intrinsics are normalized (principal point 0.5,
focal ``1 / (tan(fov/2) * sqrt(2))`` as EG3D). Sphere poses are area-uniform over the
whole sphere (polar angle ``phi = arccos(1 - 2u)`` from +y).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from tri3d.ops._checks import check_finite

WORLD_UP = (0.0, 1.0, 0.0)
_PARALLEL_EPS = 1e-6


def _normalize(v: Tensor) -> Tensor:  # [..., 3]
    return v / v.norm(dim=-1, keepdim=True)


def look_at(
    origins: Tensor,  # [..., 3]
    target: Tensor | None = None,  # [3] or [..., 3]
    up: Tensor | None = None,  # [3]
) -> Tensor:  # [..., 4, 4]
    """OpenCV cam2world matrices of cameras at ``origins`` looking at ``target``.

    Stays finite and orthonormal when the viewing direction is parallel to ``up`` (the
    poles): there the right axis is taken from a fallback up vector, the world axis least
    aligned with the view direction.

    Args:
        origins: camera centres ``[..., 3]``.
        target: point looked at, ``[3]`` or broadcastable ``[..., 3]``; default origin.
        up: world up ``[3]``; default +y.

    Returns:
        cam2world ``[..., 4, 4]``: columns right, down, forward, position.
    """
    if not isinstance(origins, Tensor) or origins.dim() < 1 or origins.shape[-1] != 3:
        raise ValueError(f"origins must be a tensor of shape [..., 3], got {getattr(origins, 'shape', type(origins))}")
    check_finite("origins", origins)
    dtype, device = origins.dtype, origins.device
    target = torch.zeros(3, dtype=dtype, device=device) if target is None else target.to(dtype=dtype, device=device)
    up = torch.tensor(WORLD_UP, dtype=dtype, device=device) if up is None else up.to(dtype=dtype, device=device)
    if target.shape[-1] != 3:
        raise ValueError(f"target must have shape [3] or [..., 3], got {list(target.shape)}")
    if up.shape != (3,):
        raise ValueError(f"up must have shape [3], got {list(up.shape)}")
    delta = target - origins
    dist = delta.norm(dim=-1, keepdim=True)
    if bool((dist <= 0).any()):
        raise ValueError("origins must differ from target (a camera at the point it looks at has no direction)")
    forward = delta / dist
    up_b = up.expand_as(forward)
    right = torch.linalg.cross(forward, up_b)
    degenerate = right.norm(dim=-1, keepdim=True) < _PARALLEL_EPS * up.norm()
    fallback_axis = forward.abs().argmin(dim=-1)  # the world axis least aligned with forward
    fallback_up = torch.nn.functional.one_hot(fallback_axis, 3).to(dtype)
    right = torch.where(degenerate, torch.linalg.cross(forward, fallback_up), right)
    right = _normalize(right)
    down = torch.linalg.cross(forward, right)
    pose = torch.zeros(*forward.shape[:-1], 4, 4, dtype=dtype, device=device)
    pose[..., :3, 0] = right
    pose[..., :3, 1] = down
    pose[..., :3, 2] = forward
    pose[..., :3, 3] = origins.expand_as(forward)
    pose[..., 3, 3] = 1
    return pose


def sphere_points(theta: Tensor, phi: Tensor, radius: float) -> Tensor:  # [...] x2 -> [..., 3]
    """Points at azimuth ``theta`` and polar angle ``phi`` (from +y) on a sphere."""
    return radius * torch.stack(
        [torch.sin(phi) * torch.cos(theta), torch.cos(phi), torch.sin(phi) * torch.sin(theta)], dim=-1
    )


def _check_radius(radius: float) -> None:
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0, got {radius}")


def _check_count(name: str, n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n!r}")


def uniform_directions(n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> Tensor:  # [n, 3]
    """Area-uniform unit vectors (azimuth uniform, polar ``arccos(1 - 2u)``)."""
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    theta = 2 * math.pi * u[:, 0]
    phi = torch.arccos(1 - 2 * u[:, 1])
    return sphere_points(theta, phi, 1.0).to(dtype)


def sample_sphere_poses(n: int, radius: float = 2.7, generator: torch.Generator | None = None) -> Tensor:  # [n, 4, 4]
    """``n`` cam2world poses area-uniform over the whole sphere, looking at the origin."""
    _check_count("n", n)
    _check_radius(radius)
    return look_at(radius * uniform_directions(n, generator))


def random_rotations(n: int, generator: torch.Generator | None = None) -> Tensor:  # [n, 3, 3]
    """Haar-uniform random rotations (QR of a Gaussian matrix with the sign fix)."""
    g = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    det = torch.det(q)
    q[:, :, 0] *= det.unsqueeze(-1)  # reflect to SO(3)
    return q


def axis_angle_rotations(axes: Tensor, angles: Tensor) -> Tensor:  # [..., 3], [...] -> [..., 3, 3]
    """Rodrigues' formula: rotations by ``angles`` (radians) about unit ``axes``."""
    x, y, z = axes.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axes.shape[:-1], 3, 3)
    s = torch.sin(angles)[..., None, None]
    c = torch.cos(angles)[..., None, None]
    eye = torch.eye(3, dtype=axes.dtype, device=axes.device)
    return eye + s * k + (1 - c) * (k @ k)


def multiview_base_angle_deg(views: int) -> float:
    """Pairwise angle of the unperturbed multi-view set: ``views`` evenly on a great circle."""
    return 180.0 if views <= 2 else 360.0 / views


def sample_multiview_poses(
    n: int,
    views: int,
    radius: float = 2.7,
    min_angle_deg: float = 60.0,
    perturb_deg: float = 10.0,
    generator: torch.Generator | None = None,
) -> Tensor:  # [n, views, 4, 4]
    """``views`` spread-apart poses per object, each area-uniform over the whole sphere.

    The views start evenly spaced on a great circle (pairwise angle at least
    ``multiview_base_angle_deg(views)``), the circle is turned by a uniformly random
    rotation, and each view is then moved by its own random rotation of at most
    ``perturb_deg`` about a random axis, so the set is never rigid. Each view on its own
    stays area-uniform over the sphere, and every pair is at least
    ``base - 2 * perturb_deg`` apart, which must be ``>= min_angle_deg``.

    Args:
        n: number of objects.
        views: views per object, >= 1.
        radius: camera distance from the origin.
        min_angle_deg: guaranteed lower bound on the pairwise view angle.
        perturb_deg: largest perturbation angle of each view.
        generator: random generator.

    Returns:
        cam2world ``[n, views, 4, 4]``.
    """
    _check_count("n", n)
    _check_count("views", views)
    _check_radius(radius)
    if not 0 <= perturb_deg < 90:
        raise ValueError(f"perturb_deg must be in [0, 90), got {perturb_deg}")
    guaranteed = multiview_base_angle_deg(views) - 2 * perturb_deg
    if views > 1 and not 0 <= min_angle_deg <= guaranteed:
        raise ValueError(
            f"min_angle_deg must be in [0, {guaranteed:g}] for views={views} and perturb_deg={perturb_deg} "
            f"(views on a great circle are {multiview_base_angle_deg(views):g} deg apart, less twice the perturbation), "
            f"got {min_angle_deg}"
        )
    az = torch.arange(views, dtype=torch.float64) * (2 * math.pi / views)
    circle = torch.stack([torch.cos(az), torch.zeros_like(az), torch.sin(az)], dim=-1)  # [V, 3]
    dirs = torch.einsum("nij,vj->nvi", random_rotations(n, generator), circle)  # [n, V, 3]
    axes = _normalize(torch.randn(n, views, 3, generator=generator, dtype=torch.float64))
    angles = torch.rand(n, views, generator=generator, dtype=torch.float64) * math.radians(perturb_deg)
    dirs = torch.einsum("nvij,nvj->nvi", axis_angle_rotations(axes, angles), dirs)
    return look_at((radius * _normalize(dirs)).float())


def fov_to_intrinsics(fov_deg: float) -> Tensor:  # [3, 3]
    """Normalized intrinsics for a vertical field of view (EG3D's convention)."""
    if not 0 < fov_deg < 180:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
    focal = 1.0 / (math.tan(math.radians(fov_deg) / 2) * math.sqrt(2))
    return torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]])


def orbit_poses(n: int, radius: float = 2.7, elevation_deg: float = 0.0) -> Tensor:  # [n, 4, 4]
    """``n`` poses evenly spaced in azimuth at a fixed elevation (for orbit videos)."""
    _check_count("n", n)
    _check_radius(radius)
    if not -90 <= elevation_deg <= 90:
        raise ValueError(f"elevation_deg must be in [-90, 90], got {elevation_deg}")
    theta = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    phi = torch.full_like(theta, math.radians(90.0 - elevation_deg))
    return look_at(sphere_points(theta, phi, radius).float())
