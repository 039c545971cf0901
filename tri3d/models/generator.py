"""The triplane generator: mapping -> StyleGAN2 synthesis (triplane) -> decoder -> renderer."""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Iterator

import torch
from torch import Tensor, nn

from tri3d.models.decoder import TriplaneDecoder
from tri3d.models.layers import FullyConnected
from tri3d.models.mapping import MappingNetwork
from tri3d.models.superres import SuperResolution
from tri3d.models.synthesis import SynthesisNetwork
from tri3d.ops import planes_for_decode, triplane_decode
from tri3d.render import TriplaneRenderer
from tri3d.render.rays import pixel_rays
from tri3d.render.renderer import Field
from tri3d.utils.typed_config import from_typed_dict

BACKGROUNDS = ("none", "learned", "random")
NORMAL_STEP = 0.01  # per-axis offset of the tetrahedron's corners around a surface point, for shading's normals (world units)


@dataclass
class RendererConfig:
    depth_samples: int = 48
    importance_samples: int = 48
    near: float = 2.25
    far: float = 3.3
    box_warp: float = 1.0
    white_back: bool = False
    plane_axes: str = "xyz"
    ray_chunk: int | None = None
    precision: str = "auto"  # fused decoder's dot operands: "auto" (tf32 on CUDA), "ieee", "tf32" or "bf16"
    deterministic: bool = False


@dataclass
class GeneratorConfig:
    """Generator architecture. The paper's changes to EG3D: ``extra_blocks`` ("+g") and
    ``decoder_layers=3`` ("+d"); multi-view discrimination is a training option."""

    z_dim: int = 512
    w_dim: int = 512
    num_classes: int = 0
    triplane_resolution: int = 256
    triplane_channels: int = 32
    channel_base: int = 32768
    channel_max: int = 512
    extra_blocks: bool = False
    mapping_layers: int = 2
    decoder_hidden: int = 64
    decoder_layers: int = 1
    decoder_lr_multiplier: float = 1.0
    image_resolution: int = 64
    neural_rendering_resolution: int = 64
    superresolution: bool = False
    sr_channels: int = 128
    # "none" (black / renderer's white_back), "learned" (one colour per object from w) or
    # "random" (a colour per view drawn uniformly in [-1, 1]^3 as the shapes set draws its
    # own: G cannot colour a painted hole like the background it will be shown over)
    background: str = "none"
    # > 0: Lambertian shading under a random light (ShadeGAN's idea): the decoded colour is an
    # albedo, multiplied per pixel by (1 - shading) + shading * max(0, n . l), n the density's
    # normal at the pixel's expected depth, l a direction drawn uniformly per object (shared by
    # its views), so shading painted onto the albedo cannot follow the light; 0: the paper
    shading: float = 0.0
    density_prior: float = 0.0  # > 0: add prior * (1 - |x| / prior_radius) to sigma_raw (a blob to start from)
    density_prior_radius: float = 0.3
    renderer: RendererConfig = field(default_factory=RendererConfig)

    @classmethod
    def from_dict(cls, d: dict, where: str = "generator config") -> "GeneratorConfig":
        """Built from JSON values, each checked against its field's type (``ValueError`` naming the key)."""
        return from_typed_dict(cls, d, where)

    def to_dict(self) -> dict:
        return asdict(self)


class TriplaneGenerator(nn.Module):
    """Class-conditional triplane generator rendering ``V`` views per object.

    ``forward(z, c, cam2world [B, V, 4, 4], intrinsics [B, V, 3, 3] or [3, 3])`` returns
    ``image [B, V, 3, H, W]`` in [-1, 1], ``depth`` and ``opacity [B, V, 1, r, r]`` at the
    neural rendering resolution, ``planes [B, 3, C, R, R]`` and ``ws``.
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.synthesis = SynthesisNetwork(
            config.w_dim, config.triplane_resolution, 3 * config.triplane_channels,
            channel_base=config.channel_base, channel_max=config.channel_max, extra_blocks=config.extra_blocks,
        )
        self.superres = None
        if config.superresolution:
            self.superres = SuperResolution(32, config.neural_rendering_resolution, config.image_resolution,
                                            config.w_dim, config.sr_channels)
        elif config.neural_rendering_resolution != config.image_resolution:
            raise ValueError("without superresolution, neural_rendering_resolution must equal image_resolution "
                             f"(got {config.neural_rendering_resolution} and {config.image_resolution})")
        if config.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {config.background!r}")
        self.background = FullyConnected(config.w_dim, 3, activation=False) if config.background == "learned" else None
        if not 0 <= config.shading <= 1:
            raise ValueError(f"shading must lie in [0, 1], got {config.shading}")
        if config.shading > 0 and config.renderer.white_back:
            raise ValueError("shading multiplies the object's colour alone: it needs renderer.white_back False")
        num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(config.z_dim, config.num_classes, config.w_dim, num_ws,
                                      num_layers=config.mapping_layers)
        self.decoder = TriplaneDecoder(config.triplane_channels, config.decoder_hidden, config.decoder_layers,
                                       32 if config.superresolution else 3, config.decoder_lr_multiplier)
        self.renderer = TriplaneRenderer(**asdict(config.renderer))
        self.synthesis_dtype: torch.dtype | None = None  # e.g. torch.bfloat16 for mixed-precision training

    @contextlib.contextmanager
    def deterministic_rendering(self) -> Iterator[None]:
        """Render without sampling randomness (no draws from the global RNG) inside the block."""
        previous = self.renderer.deterministic
        self.renderer.deterministic = True
        try:
            yield
        finally:
            self.renderer.deterministic = previous

    def planes(self, ws: Tensor, noise_mode: str = "random") -> Tensor:  # [B, num_ws, w_dim] -> [B, 3, C, R, R]
        """The triplane: fp32, or with ``synthesis_dtype`` set (bf16 training) in that dtype,
        as the synthesis network (run under autocast) made it. The fused decoder reads bf16
        planes as they are (half the plane traffic and of the copy kept for backward) and
        computes in fp32; the reference path converts them. Decoding and compositing stay
        fp32."""
        dtype = self.synthesis_dtype
        with torch.autocast(ws.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            img = self.synthesis(ws, noise_mode)
        img = img.float() if dtype is None else img.to(dtype)
        B, _, R, _ = img.shape
        return img.reshape(B, 3, self.config.triplane_channels, R, R)

    def field(self, planes: Tensor):
        """The radiance field of ``planes``: xyz [B, N, 3] -> (sigma_raw [B, N, 1], rgb [B, N, C]).
        The planes are laid out for the decode path once here, not once per decode call."""
        planes = planes_for_decode(planes)

        def decode(xyz: Tensor) -> tuple[Tensor, Tensor]:
            sigma, rgb = triplane_decode(planes, xyz, self.decoder, box_warp=self.renderer.box_warp,
                                         plane_axes=self.renderer.plane_axes, precision=self.renderer.precision)
            if self.config.density_prior > 0:
                radius = xyz.norm(dim=-1, keepdim=True)
                sigma = sigma + self.config.density_prior * (1 - radius / self.config.density_prior_radius)
            return sigma, rgb

        return decode

    def sample_density(self, planes: Tensor, xyz: Tensor) -> Tensor:  # [B, 3, C, R, R], [B, N, 3] -> [B, N, 1]
        """Raw density at world points (density regularization, mesh export)."""
        return self.field(planes)(xyz)[0]

    def lambertian_shade(self, field: Field,  # xyz [B, N, 3] -> (sigma_raw [B, N, 1], rgb)
                         cam2world: Tensor,  # [B, V, 4, 4]
                         intrinsics: Tensor,  # [B, V, 3, 3] or [3, 3]
                         depth: Tensor,  # [B, V, 1, r, r] expected depth per pixel
                         *, generator: torch.Generator | None = None,
                         ) -> Tensor:  # [B, V, 1, r, r]
        """``(1 - shading) + shading * max(0, n . l)`` per pixel (``GeneratorConfig.shading``).
        ``n`` is the unit normal of the raw density at the pixel's expected-depth point, from
        differences over a regular tetrahedron of offsets around it (four decodes per pixel;
        exact for a density linear there, first-order accurate otherwise);
        ``l`` is drawn uniformly on the sphere per object. Gradients reach the density through
        ``n`` and the depth."""
        B, V, _, r, _ = depth.shape
        if intrinsics.dim() == 2:
            intrinsics = intrinsics.to(cam2world).expand(B, V, 3, 3)
        origins, dirs = pixel_rays(cam2world, intrinsics, r)  # [B, V, r*r, 3]
        surface = origins + dirs * depth.flatten(2).unsqueeze(-1)  # [B, V, r*r, 3]
        corners = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=depth.dtype,
                               device=depth.device)  # [4, 3]: sum of c c^T = 4 I, sum of c = 0
        points = surface.reshape(B, V * r * r, 1, 3) + NORMAL_STEP * corners
        sigma = field(points.reshape(B, V * r * r * 4, 3))[0].reshape(B, V * r * r, 4)
        gradient = sigma @ corners  # [B, V*r*r, 3]: 4 NORMAL_STEP times the density's gradient, to first order
        normal = -gradient / gradient.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        light = torch.randn(B, 1, 3, device=depth.device, dtype=depth.dtype, generator=generator)
        light = light / light.norm(dim=-1, keepdim=True)
        cosine = (normal * light).sum(dim=-1).clamp(min=0)  # [B, V*r*r]
        shade = 1 - self.config.shading + self.config.shading * cosine
        return shade.reshape(B, V, 1, r, r)

    def synthesize(self, ws: Tensor, cam2world: Tensor, intrinsics: Tensor, *,
                   neural_rendering_resolution: int | None = None, noise_mode: str = "random",
                   generator: torch.Generator | None = None, with_distortion: bool = False) -> dict[str, Tensor]:
        """Render from given ``ws`` (used by inversion and by ``forward``); ``with_distortion``
        adds each pixel's ray distortion (``TriplaneRenderer.forward``)."""
        res = neural_rendering_resolution or self.config.neural_rendering_resolution
        with self.renderer.timer.stage("synthesis"):
            planes = self.planes(ws, noise_mode)
        field = self.field(planes)
        out = self.renderer.render_field(field, cam2world, intrinsics, res, batch=planes.shape[0],
                                         generator=generator, with_distortion=with_distortion)
        features = out["rgb"]  # [B, V, C_out, r, r] in [-1, 1]
        B, V = features.shape[:2]
        if self.config.shading > 0:  # albedo composite (features + 1) / 2 times the shade, back to [-1, 1]
            shade = self.lambertian_shade(field, cam2world, intrinsics, out["depth"], generator=generator)
            features = torch.cat([(features[:, :, :3] + 1) * shade - 1, features[:, :, 3:]], dim=2)
        bg = None  # [B, 1 or V, 3, 1, 1] in [-1, 1]
        if self.background is not None:
            bg = torch.tanh(self.background(ws[:, -1]))[:, None, :, None, None]
        elif self.config.background == "random":
            bg = torch.rand(B, V, 3, 1, 1, device=features.device, generator=generator) * 2 - 1
        if bg is not None:  # composite the colour channels over the background colour
            colour = features[:, :, :3] + (1 - out["opacity"]) * (bg + 1)
            features = torch.cat([colour, features[:, :, 3:]], dim=2)
        if self.superres is not None:
            flat = features.flatten(0, 1)
            sr_in = self.config.neural_rendering_resolution
            if flat.shape[-1] != sr_in:  # a faded neural resolution: SR always starts from its own input size
                flat = torch.nn.functional.interpolate(flat, size=(sr_in, sr_in), mode="bilinear", align_corners=False)
            wv = ws.repeat_interleave(V, dim=0)
            image = self.superres(flat, wv, noise_mode).unflatten(0, (B, V))
            image_raw = features[:, :, :3]
        else:
            image = image_raw = features
        result = {"image": image, "image_raw": image_raw, "depth": out["depth"], "opacity": out["opacity"],
                  "planes": planes, "ws": ws}
        if with_distortion:
            result["distortion"] = out["distortion"]
        return result

    def forward(self, z: Tensor, c: Tensor | None, cam2world: Tensor, intrinsics: Tensor, *,
                truncation_psi: float = 1.0, neural_rendering_resolution: int | None = None,
                noise_mode: str = "random", update_w_avg: bool = False,
                generator: torch.Generator | None = None, with_distortion: bool = False) -> dict[str, Tensor]:
        with self.renderer.timer.stage("mapping"):
            ws = self.mapping(z, c, truncation_psi=truncation_psi, update_w_avg=update_w_avg)
        return self.synthesize(ws, cam2world, intrinsics, neural_rendering_resolution=neural_rendering_resolution,
                               noise_mode=noise_mode, generator=generator, with_distortion=with_distortion)
