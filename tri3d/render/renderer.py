"""Volume rendering of triplanes: rays -> coarse samples -> importance samples -> composite."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from tri3d.ops import composite, planes_for_decode, triplane_decode
from tri3d.ops._checks import check_tensor
from tri3d.ops.triplane import PLANE_AXES, PRECISIONS
from tri3d.render.distortion import ray_distortion
from tri3d.render.rays import pixel_rays
from tri3d.ops import importance_depths, merge_samples
from tri3d.render.sampling import check_near_far, stratified_depths
from tri3d.utils.timing import NullTimer

# A radiance field: world points [B, N, 3] -> (sigma_raw [B, N, 1], rgb [B, N, C]).
Field = Callable[[Tensor], "tuple[Tensor, Tensor]"]


class TriplaneRenderer(nn.Module):
    """Renders images of triplanes (or any radiance field) from pinhole cameras.

    Args:
        depth_samples: stratified coarse samples per ray (>= 4 when importance sampling).
        importance_samples: fine samples per ray drawn from the coarse weights (0 = none).
        near: depth where rays start (distance along the unit ray direction).
        far: depth where rays end.
        box_warp: side of the cube the triplane spans.
        white_back: composite over a white background instead of black.
        plane_axes: "xyz" or "eg3d" (see ``sample_triplane``).
        ray_chunk: rays decoded at once across the batch when no gradient is recorded
            (generation, metrics: bounds memory at any resolution); ``None`` renders all
            rays in one pass. Under autograd every chunk's graph would live until the
            backward pass, so chunking saves nothing there and all rays render at once.
        deterministic: no random jitter of the coarse samples and evenly spaced CDF
            levels for the fine ones (flicker-free videos, exact comparisons).
        precision: decoder MLP dot operands on the fused path: "auto" (tf32 on CUDA),
            "ieee" (exact fp32), "tf32" or "bf16" (see ``triplane_decode``).
    """

    def __init__(
        self,
        depth_samples: int = 48,
        importance_samples: int = 48,
        near: float = 2.25,
        far: float = 3.3,
        box_warp: float = 1.0,
        white_back: bool = False,
        plane_axes: str = "xyz",
        ray_chunk: int | None = None,
        deterministic: bool = False,
        precision: str = "auto",
    ):
        super().__init__()
        check_near_far(near, far)
        if depth_samples < 2 or (importance_samples > 0 and depth_samples < 4):
            raise ValueError(f"depth_samples must be >= 2 (>= 4 with importance sampling), got {depth_samples}")
        if importance_samples < 0:
            raise ValueError(f"importance_samples must be >= 0, got {importance_samples}")
        if not box_warp > 0:
            raise ValueError(f"box_warp must be > 0, got {box_warp}")
        if plane_axes not in PLANE_AXES:
            raise ValueError(f"plane_axes must be one of {tuple(PLANE_AXES)}, got {plane_axes!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if ray_chunk is not None and ray_chunk < 1:
            raise ValueError(f"ray_chunk must be >= 1 or None, got {ray_chunk}")
        self.depth_samples = depth_samples
        self.importance_samples = importance_samples
        self.near = near
        self.far = far
        self.box_warp = box_warp
        self.white_back = white_back
        self.plane_axes = plane_axes
        self.ray_chunk = ray_chunk
        self.deterministic = deterministic
        self.precision = precision
        self.timer = NullTimer()  # set a StageTimer to time sample+decode / composite / importance

    def forward(
        self,
        planes: Tensor,  # [B, 3, C, H, W]
        decoder: nn.Module,
        cam2world: Tensor,  # [B, V, 4, 4]
        intrinsics: Tensor,  # [B, V, 3, 3] or [3, 3]
        resolution: int,
        *,
        generator: torch.Generator | None = None,
        with_distortion: bool = False,
    ) -> dict[str, Tensor]:
        """Render ``V`` views of each of ``B`` triplanes.

        Returns:
            dict with ``rgb [B, V, C_out, res, res]`` (scaled to [-1, 1] by ``*2 - 1``),
            ``depth [B, V, 1, res, res]`` and ``opacity [B, V, 1, res, res]``; with
            ``with_distortion`` also every pixel's ray ``distortion [B, V, 1, res, res]``
            (``tri3d.render.distortion``: how far its weights are from one surface).
        """
        planes = planes_for_decode(planes)  # one layout conversion per render, not per decode call

        def field(xyz: Tensor) -> tuple[Tensor, Tensor]:
            return triplane_decode(
                planes, xyz, decoder, box_warp=self.box_warp, plane_axes=self.plane_axes, precision=self.precision
            )

        return self.render_field(field, cam2world, intrinsics, resolution, batch=planes.shape[0], generator=generator,
                                 with_distortion=with_distortion)

    def render_field(
        self,
        field: Field,
        cam2world: Tensor,  # [B, V, 4, 4]
        intrinsics: Tensor,  # [B, V, 3, 3] or [3, 3]
        resolution: int,
        *,
        batch: int,
        generator: torch.Generator | None = None,
        with_distortion: bool = False,
    ) -> dict[str, Tensor]:
        """Render a radiance field ``field(xyz [B, N, 3]) -> (sigma_raw, rgb)``; see ``forward``."""
        check_tensor("cam2world", cam2world, (batch, "V", 4, 4))
        V = cam2world.shape[1]
        if V < 1:
            raise ValueError(f"cam2world must hold at least one view per object, got V={V}")
        if isinstance(intrinsics, Tensor) and intrinsics.dim() == 2:
            intrinsics = intrinsics.to(cam2world).expand(batch, V, 3, 3)
        check_tensor("intrinsics", intrinsics, (batch, V, 3, 3))
        origins, dirs = pixel_rays(cam2world, intrinsics, resolution)  # [B, V, HW, 3]
        HW = resolution * resolution
        rays = self.render_rays(field, origins.reshape(batch, V * HW, 3), dirs.reshape(batch, V * HW, 3),
                                generator=generator, with_distortion=with_distortion)

        def image(x: Tensor) -> Tensor:  # [B, V*HW, C] -> [B, V, C, res, res]
            return x.reshape(batch, V, resolution, resolution, -1).permute(0, 1, 4, 2, 3)

        return {name: image(x) for name, x in rays.items()}

    def render_rays(
        self,
        field: Field,
        origins: Tensor,  # [B, R, 3]
        dirs: Tensor,  # [B, R, 3]
        *,
        generator: torch.Generator | None = None,
        with_distortion: bool = False,
    ) -> dict[str, Tensor]:
        """Render rays in chunks of ``ray_chunk`` rays (across the batch) when no gradient
        is recorded, else in one pass: ``rgb [B, R, C]`` in [-1, 1], ``depth [B, R, 1]``,
        ``opacity [B, R, 1]`` and, with ``with_distortion``, ``distortion [B, R, 1]``."""
        B, R, _ = origins.shape
        step = R if self.ray_chunk is None or torch.is_grad_enabled() else max(1, self.ray_chunk // B)
        parts = [
            self._render_chunk(field, origins[:, i : i + step], dirs[:, i : i + step], generator, with_distortion)
            for i in range(0, R, step)
        ]
        out = {name: torch.cat([part[name] for part in parts], dim=1) for name in parts[0]}
        rgb = out["rgb"] + 1 - out["opacity"] if self.white_back else out["rgb"]
        return {**out, "rgb": rgb * 2 - 1}

    def _query(self, field: Field, origins: Tensor, dirs: Tensor, depths: Tensor) -> tuple[Tensor, Tensor]:
        B, R, S, _ = depths.shape
        xyz = (origins.unsqueeze(2) + dirs.unsqueeze(2) * depths).reshape(B, R * S, 3)
        sigma, rgb = field(xyz)
        return sigma.reshape(B, R, S, 1), rgb.reshape(B, R, S, -1)

    def _render_chunk(
        self,
        field: Field,
        origins: Tensor,  # [B, r, 3]
        dirs: Tensor,  # [B, r, 3]
        generator: torch.Generator | None,
        with_distortion: bool,
    ) -> dict[str, Tensor]:
        B, r, _ = origins.shape
        depths = stratified_depths(
            B, r, self.depth_samples, self.near, self.far, device=origins.device, dtype=origins.dtype,
            generator=generator, deterministic=self.deterministic,
        )
        timer = self.timer
        with timer.stage("sample+decode"):
            sigma, rgb = self._query(field, origins, dirs, depths)
        if self.importance_samples > 0:
            # The coarse weights only place the fine samples (which carry no gradient), and the
            # coarse samples are differentiated through the final merged composite: this
            # composite needs neither colour nor a graph (EG3D's coarse pass does the same).
            with timer.stage("composite"), torch.no_grad():
                _, _, weights = composite(sigma, rgb[..., :0], depths)
            with timer.stage("importance"):
                fine = importance_depths(
                    depths, weights, self.importance_samples, generator=generator, deterministic=self.deterministic
                )
            with timer.stage("sample+decode"):
                sigma_f, rgb_f = self._query(field, origins, dirs, fine)
            with timer.stage("importance"):
                depths, sigma, rgb = merge_samples(depths, sigma, rgb, fine, sigma_f, rgb_f)
        with timer.stage("composite"):
            out_rgb, out_depth, weights = composite(sigma, rgb, depths)
        out = {"rgb": out_rgb, "depth": out_depth, "opacity": weights.sum(dim=2)}
        if with_distortion:
            out["distortion"] = ray_distortion(weights, depths, self.near, self.far)
        return out
