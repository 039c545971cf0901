"""Training configuration: one dataclass, named presets, range validation."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field

from tri3d.data.dataset import MAX_CLASSES
from tri3d.metrics.shapes_judges import JudgeConfig
from tri3d.models import DiscriminatorConfig, GeneratorConfig, RendererConfig
from tri3d.models.discriminator import DOWN_FILTERS
from tri3d.render.camera import multiview_base_angle_deg
from tri3d.utils.typed_config import from_typed_dict


PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # names the run folder: no path separators


@dataclass
class TrainConfig:
    """Everything a run needs; written to every snapshot's ``config.json``."""

    preset: str = "tiny"
    data: str | None = None  # dataset folder/zip; None = the embedded shapes set
    shapes_per_class: int = 200
    mirror: bool = False  # also show D each real image flipped left-right (StyleGAN's --mirror): twice the images
    run_dir: str = "runs"
    seed: int = 0
    device: str = "auto"
    batch: int = 8
    total_kimg: float = 2.0
    max_minutes: float = 0.0  # > 0: wall-clock cap on one invocation's training; it stops at the first step past it
    snapshot_kimg: float = 1.0
    log_every: int = 10
    lr_G: float = 0.0025
    lr_D: float = 0.002
    lr_anneal: float = 0.0  # > 0: over the last lr_anneal of the budget (max_minutes' wall clock with a time cap, else total_kimg) both learning rates fall linearly to lr_anneal_floor x; 0: constant
    lr_anneal_floor: float = 0.25  # the learning rates' multiplier at the end of the budget (with lr_anneal > 0)
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 1.0
    r1_interval: int = 16
    class_loss: float = 0.0  # > 0: cross-entropy on D's class scores (reals for D, fakes for G); 0: the paper
    density_reg: float = 0.25
    density_reg_every: int = 4
    density_reg_p_dist: float = 0.004
    distortion_reg: float = 0.0  # > 0: weight of Mip-NeRF 360's distortion loss on G's rays (surfaces, not fog); 0: the paper
    blur_init_sigma: float = 10.0
    blur_fade_kimg: float = 200.0
    center_input_rampup_kimg: float = 0.0  # with D.center_input: kimg over which the share of each image's mean colour D's convolutions see removed grows from 0 to 1 (0: all of it from the start)
    views: int = 1  # views per generated object seen by D (multi-view discrimination)
    multiview_start_kimg: float = 0.0
    min_view_angle_deg: float = 60.0
    view_perturb_deg: float = 10.0
    camera_radius: float = 2.7
    fov_deg: float = 18.837
    neural_rendering_resolution_initial: int | None = None  # None: no fade
    neural_rendering_resolution_fade_kimg: float = 1000.0
    ema_kimg: float | None = None  # None: batch * 10 / 32
    ema_rampup: float | None = 0.05
    num_workers: int = 0
    skip_bad: bool = False
    grid_objects: int = 4
    noise_mode: str = "random"  # synthesis noise in training; "const" makes runs independent of the process count
    precision: str = "fp32"  # "bf16": autocast for synthesis and D's high-resolution blocks (no loss scaling)
    max_nonfinite_steps: int = 20  # steps in a row with non-finite losses/gradients (skipped) that stop the run
    metrics_detector: str | None = None  # e.g. "shapes" or a TorchScript path: metrics at every snapshot
    metrics_num_gen: int = 1000
    metrics_judge: JudgeConfig = field(default_factory=JudgeConfig)  # how the shapes judges are made
    G: GeneratorConfig = field(default_factory=GeneratorConfig)
    D: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "training config") -> "TrainConfig":
        """Built from JSON values (a ``config.json``), each checked against its field's type;
        ``ValueError`` names the file (``where``) and the first bad key."""
        return from_typed_dict(cls, d, where)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def validate(self, names: dict[str, str] | None = None) -> None:
        """Raise ``ValueError`` naming the first option out of range.

        ``names`` maps field names to what the user typed (the CLI passes its flags, e.g.
        ``{"num_workers": "--workers"}``), so messages name the flag, not the field."""
        names = names or {}
        g, d, r = self.G, self.D, self.G.renderer
        checks = [
            ("batch", 1 <= self.batch <= MAX_BATCH, f"an integer in [1, {MAX_BATCH}]"),
            ("total_kimg", 0 < self.total_kimg <= MAX_KIMG, f"a number in (0, {MAX_KIMG:g}]"),
            ("max_minutes", 0 <= self.max_minutes <= MAX_MINUTES, f"in [0, {MAX_MINUTES:g}] (0: no cap)"),
            ("snapshot_kimg", 0 < self.snapshot_kimg <= MAX_KIMG, f"a number in (0, {MAX_KIMG:g}]"),
            ("log_every", self.log_every >= 1, "an integer >= 1"), ("lr_G", self.lr_G > 0, "> 0"),
            ("lr_D", self.lr_D > 0, "> 0"), ("lr_anneal", 0 <= self.lr_anneal <= 1, "in [0, 1] (0: constant rates)"),
            ("lr_anneal_floor", 0 < self.lr_anneal_floor <= 1, "in (0, 1]"), ("beta1", 0 <= self.beta1 < 1, "in [0, 1)"),
            ("beta2", 0 <= self.beta2 < 1, "in [0, 1)"), ("r1_gamma", self.r1_gamma >= 0, ">= 0"),
            ("r1_interval", self.r1_interval >= 1, ">= 1"), ("class_loss", self.class_loss >= 0, ">= 0"),
            ("density_reg", self.density_reg >= 0, ">= 0"),
            ("density_reg_every", self.density_reg_every >= 1, ">= 1"),
            ("distortion_reg", self.distortion_reg >= 0, ">= 0"),
            ("center_input_rampup_kimg", self.center_input_rampup_kimg >= 0, ">= 0"),
            ("views", 1 <= self.views <= 16, "in [1, 16]"),
            ("multiview_start_kimg", self.multiview_start_kimg >= 0, ">= 0"),
            ("view_perturb_deg", 0 <= self.view_perturb_deg <= 90, "in [0, 90]"),
            ("camera_radius", self.camera_radius > 0, "> 0"), ("fov_deg", 0 < self.fov_deg < 180, "in (0, 180)"),
            ("num_workers", 0 <= self.num_workers <= 256, "in [0, 256]"),
            ("grid_objects", 1 <= self.grid_objects <= 1024, "in [1, 1024]"),
            ("precision", self.precision in ("fp32", "bf16"), "fp32 or bf16"),
            ("noise_mode", self.noise_mode in ("random", "const", "none"), "random, const or none"),
            ("shapes_per_class", 1 <= self.shapes_per_class <= 100_000, "in [1, 100000]"),
            ("max_nonfinite_steps", self.max_nonfinite_steps >= 1, ">= 1"),
            ("metrics_num_gen", 2 <= self.metrics_num_gen <= 1_000_000, "in [2, 1000000]"),
            ("device", self.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", self.device) is not None,
             "auto, cpu, cuda or cuda:N"),
            ("G.image_resolution", _power_of_two(g.image_resolution, 8, 4096), "a power of two in [8, 4096]"),
            ("G.neural_rendering_resolution", _power_of_two(g.neural_rendering_resolution, 8, 4096),
             "a power of two in [8, 4096]"),
            ("G.triplane_resolution", _power_of_two(g.triplane_resolution, 8, 4096), "a power of two in [8, 4096]"),
            ("G.z_dim", 1 <= g.z_dim <= 4096, "in [1, 4096]"), ("G.w_dim", 1 <= g.w_dim <= 4096, "in [1, 4096]"),
            ("G.num_classes", 0 <= g.num_classes <= MAX_CLASSES, f"in [0, {MAX_CLASSES}]"),
            ("G.triplane_channels", 1 <= g.triplane_channels <= 1024, "in [1, 1024]"),
            ("G.channel_max", 1 <= g.channel_max <= 4096, "in [1, 4096]"),
            ("G.decoder_hidden", 1 <= g.decoder_hidden <= 4096, "in [1, 4096]"),
            ("G.shading", 0 <= g.shading <= 1, "in [0, 1]"),
            ("G.renderer.depth_samples", 1 <= r.depth_samples <= 1024, "in [1, 1024]"),
            ("G.renderer.importance_samples", 0 <= r.importance_samples <= 1024, "in [0, 1024]"),
            ("G.renderer.near < G.renderer.far", 0 < r.near < r.far, "0 < near < far"),
            ("D.channel_max", 1 <= d.channel_max <= 4096, "in [1, 4096]"),
            ("D.down_filter", d.down_filter in DOWN_FILTERS, " or ".join(sorted(DOWN_FILTERS))),
            ("G.image_resolution == D.image_resolution", g.image_resolution == d.image_resolution, "equal"),
            ("G.num_classes == D.num_classes", g.num_classes == d.num_classes, "equal"),
            ("D.dual == G.superresolution (EG3D's dual discrimination)", d.dual == g.superresolution, "equal"),
        ]
        if not PRESET_NAME.fullmatch(str(self.preset)):
            raise ValueError(f"invalid training option preset: {self.preset!r} (it names the run folder: letters, "
                             "digits, '.', '_', '+' and '-', starting with a letter or digit)")
        for name, ok, wanted in checks:
            if not ok:
                shown = f"{names.get(name, name)} {_value_of(self, name)}".rstrip()
                raise ValueError(f"invalid training option {shown}: must be {wanted}")
        if self.views > 1:  # the multi-view camera sampler's guarantee (checked here, before any folder exists)
            guaranteed = multiview_base_angle_deg(self.views) - 2 * self.view_perturb_deg
            if not 0 <= self.min_view_angle_deg <= guaranteed:
                raise ValueError(
                    f"invalid training option {names.get('views', 'views')} {self.views}: {self.views} views on a "
                    f"great circle, each perturbed by up to {self.view_perturb_deg:g} deg, are only {guaranteed:g} deg "
                    f"apart, below min_view_angle_deg {self.min_view_angle_deg:g} (use fewer views or lower "
                    "min_view_angle_deg / view_perturb_deg in a --config)")


MAX_BATCH = 65536  # objects per step
MAX_KIMG = 1e6  # thousands of images (the paper's runs: 25,000)
MAX_MINUTES = 1e7  # about 19 years


def _power_of_two(value: int, lo: int, hi: int) -> bool:
    return lo <= value <= hi and value & (value - 1) == 0


def _value_of(cfg: TrainConfig, name: str) -> str:
    """The value of a (possibly dotted) field for an error message; '' for derived checks."""
    owner = cfg
    for part in name.split("."):
        if not part.isidentifier() or not hasattr(owner, part):
            return ""
        owner = getattr(owner, part)
    return repr(owner)


def _imagenet() -> TrainConfig:
    """The paper's configuration (EG3D + deeper generator "+g" + deeper decoder "+d" + 3 views)."""
    return TrainConfig(
        preset="imagenet", batch=32, total_kimg=25000, snapshot_kimg=200, log_every=50, r1_gamma=1.0, views=3,
        camera_radius=2.7, fov_deg=18.837,
        G=GeneratorConfig(z_dim=512, w_dim=512, triplane_resolution=256, triplane_channels=32, channel_base=32768,
                          channel_max=512, extra_blocks=True, decoder_layers=3, image_resolution=128,
                          neural_rendering_resolution=64, superresolution=True,
                          renderer=RendererConfig(depth_samples=48, importance_samples=48, ray_chunk=1 << 16,
                                                  precision="tf32")),
        D=DiscriminatorConfig(image_resolution=128, channel_base=32768, channel_max=512, dual=True),
    )


def _ablation(extra_blocks: bool, decoder_layers: int, views: int, name: str) -> TrainConfig:
    cfg = _imagenet()
    cfg.preset = name
    cfg.G.extra_blocks, cfg.G.decoder_layers, cfg.views = extra_blocks, decoder_layers, views
    return cfg


def _shapenet() -> TrainConfig:
    return TrainConfig(
        preset="shapenet", batch=32, total_kimg=10000, snapshot_kimg=200, log_every=50, r1_gamma=0.3, views=1,
        camera_radius=1.7, fov_deg=49.13, blur_fade_kimg=200,
        G=GeneratorConfig(triplane_resolution=256, image_resolution=64, neural_rendering_resolution=64,
                          renderer=RendererConfig(depth_samples=64, importance_samples=64, near=0.1, far=2.6,
                                                  box_warp=1.6, white_back=True, ray_chunk=1 << 16,
                                                  precision="tf32")),
        D=DiscriminatorConfig(image_resolution=64),
    )


def _tiny() -> TrainConfig:
    """Minutes on a CPU: the paper's method (+g, +d, 2 views) at toy size on the shapes set.

    16x16 images (the shapes stay recognisable: the judges reach 0.96 rgb / 0.99 depth
    held-out accuracy) render 2.3x faster than 32x32 on the CPU. ``python train.py`` has
    10 minutes on 2 cores: training stops after 9.5 minutes of steps (``max_minutes``;
    start-up and the last snapshot take seconds) or at 100 kimg, whichever comes first,
    because what it learns grows with kimg up to 110 kimg at least (measured) and the same
    2-core machine has run 10 kimg in 2.4 to 8.9 minutes on different days; the kimg a run
    reached is in its log and its last snapshot's name. D sees one view per object until
    20 kimg and two from there (``multiview_start_kimg``): one-view steps are about a fifth
    cheaper, and over 8 seeds in 9 minutes this schedule reached 40.5-44.5 kimg against
    35.1-38.4 with higher mean rgb and depth-only class accuracy and a lower depth FID
    (6 seeds of 8; docs/learning.md, "One view first"). Two additions to the paper: a class
    loss (weight 1), because in this budget D's projection alone ranks real images' labels
    at chance (measured), which leaves G no class signal; and the distortion loss (weight
    1), because without it most early views are fog that the depth judge calls flat cards
    (measured). No spherical density prior: with one (``density_prior=8``) every class
    started as a ball, and at 8 kimg the depth-only accuracy was 0.31-0.35 over 3 seeds
    against 0.41-0.42 over 2 without it (measured, README). D downsamples by plain stride
    2, not StyleGAN2's [1,3,3,1] blur: at 16 px the blur hides a box's edges and corners,
    and with it G drew boxes as spheres (box views right from depth in 0.04-0.37 of them
    over 8 seeds; without it 0.35-0.76 in 7 of the 8, and rgb and depth-only class
    accuracy higher in all 8: +0.11 and +0.14 on average; docs/learning.md). Constant
    learning rates: annealing them over the last 35% of the cap (``lr_anneal`` 0.35) helped
    three runs resumed from 30 kimg but not six capped runs (docs/learning.md, "Late
    levers")."""
    return TrainConfig(
        preset="tiny", batch=8, total_kimg=100.0, max_minutes=9.5, snapshot_kimg=5.0, log_every=10,
        lr_G=0.004, lr_D=0.004, class_loss=1.0, distortion_reg=1.0, r1_gamma=0.5, views=2, multiview_start_kimg=20.0,
        min_view_angle_deg=100.0, view_perturb_deg=20.0, camera_radius=2.7, fov_deg=30.0,
        blur_init_sigma=1.0, blur_fade_kimg=1.0, density_reg_every=8, grid_objects=5,
        G=GeneratorConfig(z_dim=64, w_dim=64, triplane_resolution=32, triplane_channels=16, channel_base=1024,
                          channel_max=64, extra_blocks=True, decoder_hidden=32, decoder_layers=3,
                          image_resolution=16, neural_rendering_resolution=16, background="learned",
                          renderer=RendererConfig(depth_samples=12, importance_samples=12, near=2.0, far=3.4)),
        D=DiscriminatorConfig(image_resolution=16, channel_base=1024, channel_max=64, down_filter="none"),
    )


def _tiny_ablation(extra_blocks: bool, decoder_layers: int, views: int, name: str) -> TrainConfig:
    """The paper's ablation rows at tiny size; +g+d+mv is ``tiny`` with D's second view from
    the start, as the paper trains it."""
    cfg = _tiny()
    cfg.preset = name
    cfg.G.extra_blocks, cfg.G.decoder_layers, cfg.views = extra_blocks, decoder_layers, views
    cfg.multiview_start_kimg = 0.0
    return cfg


PRESETS = {
    "tiny": _tiny,
    "tiny-eg3d": lambda: _tiny_ablation(False, 1, 1, "tiny-eg3d"),
    "tiny-eg3d+d": lambda: _tiny_ablation(False, 3, 1, "tiny-eg3d+d"),
    "tiny-eg3d+g+d": lambda: _tiny_ablation(True, 3, 1, "tiny-eg3d+g+d"),
    "tiny-eg3d+g+d+mv": lambda: _tiny_ablation(True, 3, 2, "tiny-eg3d+g+d+mv"),
    "shapenet": _shapenet,
    "imagenet": _imagenet,
    "eg3d": lambda: _ablation(False, 1, 1, "eg3d"),
    "eg3d+d": lambda: _ablation(False, 3, 1, "eg3d+d"),
    "eg3d+g+d": lambda: _ablation(True, 3, 1, "eg3d+g+d"),
    "eg3d+g+d+mv": lambda: _ablation(True, 3, 3, "eg3d+g+d+mv"),
}


def preset(name: str) -> TrainConfig:
    """A fresh copy of a named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name]())


def with_overrides(cfg: TrainConfig, assignments: list[str], flag: str = "--set") -> TrainConfig:
    """A copy of ``cfg`` with ``KEY=VALUE`` assignments applied, checked as a config.json
    is and range-validated. Dotted keys reach nested configs (``G.renderer.depth_samples=24``);
    a value is read as JSON (``0.006``, ``true``, ``null``) or else taken as a plain string
    (``G.background=random``). ``ValueError`` names ``flag`` and the assignment."""
    data = cfg.to_dict()
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag}: expected KEY=VALUE, got {assignment!r}")
        *parents, leaf = key.split(".")
        node = data
        for i, part in enumerate(parents):
            node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise ValueError(f"{flag} {assignment}: {'.'.join(parents[:i + 1])} is not a group of options")
        if leaf not in node:
            raise ValueError(f"{flag} {assignment}: unknown option {key}")
        try:
            node[leaf] = json.loads(text)
        except json.JSONDecodeError:
            node[leaf] = text
    out = TrainConfig.from_dict(data, where=flag)
    try:
        out.validate()
    except ValueError as e:
        raise ValueError(f"{flag}: {e}") from None
    return out
