"""Judges for the embedded shapes set that can see geometry.

Two small CNN classifiers, each trained once per resolution and cached:

- **rgb**: the images alone (each image's mean colour removed: backgrounds are random).
- **depth**: the ground-truth depth maps alone, as *nearness*
  ``(far - depth) / (far - near)`` where opacity > 0.5 and 0 elsewhere. Besides the five
  shapes it knows a sixth class, **flat card**: real silhouettes at a constant or slightly
  tilted depth. A billboard (the failure EG3D shows with whole-sphere cameras) or a
  sliver is therefore called a card, never a shape, and fails depth-only class accuracy.

Both train on a shapes set of another seed that holds more images than the training set
and report their accuracy on a fresh held-out seed (``JudgeConfig``).
Their penultimate features give rgb FID / KID and depth FID / KID.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from tri3d.data.shapes import CAMERA, CLASS_NAMES, default_cache_dir, make_shapes_dataset, shapes_dataset_path
from tri3d.utils.typed_config import from_typed_dict

JUDGE_BATCH = 64
JUDGE_FORMAT = 1
FLAT_CARD = len(CLASS_NAMES)  # the depth judge's extra class


@dataclass
class JudgeConfig:
    """How the judges are made (part of their cache key)."""

    train_per_class: int = 600  # images per class of the judges' training set (3,000: 3x tiny's set)
    train_seed: int = 1  # a seed other than the GAN's training set (0)
    heldout_per_class: int = 100  # images per class of the fresh held-out set that scores the judges
    heldout_seed: int = 2
    steps: int = 1500  # Adam steps of batch 64

    @classmethod
    def from_dict(cls, d: dict, where: str = "judge config") -> "JudgeConfig":
        """Built from JSON values, each checked against its field's type (``ValueError`` naming the key)."""
        return from_typed_dict(cls, d, where)


def depth_nearness(depth: Tensor, opacity: Tensor,  # [N, 1, H, W] each
                   near: float = CAMERA["near"], far: float = CAMERA["far"]) -> Tensor:  # [N, 1, H, W] in [0, 1]
    """``(far - depth) / (far - near)`` on pixels with opacity > 0.5, 0 on the background."""
    value = ((far - depth) / (far - near)).clamp(0, 1)
    return torch.where(opacity > 0.5, value, torch.zeros_like(value)).nan_to_num(0.0)


def flat_cards(masks: Tensor,  # [N, 1, H, W] bool silhouettes
               generator: torch.Generator) -> Tensor:  # [N, 1, H, W] nearness
    """Silhouettes at a constant depth, half of them tilted by up to +-0.15 across the image."""
    N, _, H, W = masks.shape
    v, u = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    level = 0.3 + 0.4 * torch.rand(N, 1, 1, 1, generator=generator)
    slope = (torch.rand(N, 2, 1, 1, generator=generator) * 0.3 - 0.15) * (torch.rand(N, 1, 1, 1, generator=generator) < 0.5)
    card = level + slope[:, :1] * u + slope[:, 1:] * v
    return torch.where(masks, card.clamp(0, 1), torch.zeros_like(card))


class ShapesClassifier(nn.Module):
    """Small CNN (conv-BN-ReLU stages) -> global average pool (the features) -> classes.

    Input: float images ``[N, in_channels, H, W]``; with ``center`` each image's mean is
    removed first (rgb: backgrounds are random solid colours)."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 32, center: bool = True):
        super().__init__()

        def stage(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]

        self.center = center
        self.body = nn.Sequential(
            *stage(in_channels, width), *stage(width, width), nn.MaxPool2d(2),
            *stage(width, 2 * width), *stage(2 * width, 2 * width), nn.MaxPool2d(2),
            *stage(2 * width, 4 * width), *stage(4 * width, 4 * width),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def embed(self, x: Tensor) -> Tensor:  # [N, C, H, W] float -> [N, 4 * width]
        if self.center:
            x = x - x.mean(dim=(2, 3), keepdim=True)
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:  # -> logits [N, num_classes]
        return self.head(self.embed(x))


class ShapesJudge:
    """A trained classifier as a detector: ``features`` / ``probabilities`` of its inputs
    (``kind="rgb"``: uint8 images ``[N, 3, H, W]``; ``"depth"``: nearness ``[N, 1, H, W]``)."""

    def __init__(self, model: ShapesClassifier, kind: str, name: str, accuracy: float):
        self.model, self.kind, self.name, self.accuracy = model.eval(), kind, name, accuracy

    def _input(self, x: Tensor) -> Tensor:
        device = next(self.model.parameters()).device
        x = x.to(device)
        return x.float() / 127.5 - 1 if self.kind == "rgb" else x.float()

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        return self.model.embed(self._input(x))

    @torch.no_grad()
    def probabilities(self, x: Tensor) -> Tensor:
        return self.model(self._input(x)).softmax(dim=1)

    def to(self, device: torch.device | str) -> "ShapesJudge":
        self.model.to(device)
        return self


def shapes_ground_truth(path: Path) -> tuple[Tensor, Tensor]:
    """``(depth nearness [N, 1, R, R], labels [N])`` of a shapes set from its ground truth."""
    gt = np.load(Path(path) / "ground_truth.npz")
    depth = torch.from_numpy(gt["depth"]).float()[:, None]
    opacity = torch.from_numpy(gt["opacity"]).float()[:, None]
    return depth_nearness(depth, opacity), torch.from_numpy(gt["classes"]).long()


def _rgb_images(path: Path) -> tuple[Tensor, Tensor]:
    from tri3d.data import ImageDataset

    ds = ImageDataset(path)
    return torch.stack([ds[i][0] for i in range(len(ds))]), ds.labels.clone()


def heldout_images(resolution: int, judge: JudgeConfig | None = None,
                   cache_dir: Path | None = None) -> tuple[Tensor, Tensor]:
    """The judges' held-out real images ``[N, 3, R, R]`` (uint8) and labels ``[N]``: the
    fresh-seed set the judges are scored on (rendered into the cache on first use)."""
    judge = judge or JudgeConfig()
    path = shapes_dataset_path(resolution, judge.heldout_per_class, judge.heldout_seed, root=cache_dir)
    return _rgb_images(make_shapes_dataset(path, resolution=resolution, per_class=judge.heldout_per_class,
                                           seed=judge.heldout_seed))


def _judge_data(kind: str, path: Path, generator: torch.Generator) -> tuple[Tensor, Tensor, int]:
    """Inputs and labels of one shapes set for a judge, real items first (depth: followed by
    as many flat cards), and the number of real items."""
    if kind == "rgb":
        images, labels = _rgb_images(path)
        return images.float() / 127.5 - 1, labels, len(labels)
    nearness, labels = shapes_ground_truth(path)
    cards = flat_cards(nearness > 0, generator)
    return torch.cat([nearness, cards]), torch.cat([labels, torch.full_like(labels, FLAT_CARD)]), len(labels)


def _fit(model: ShapesClassifier, x: Tensor, y: Tensor, steps: int, generator: torch.Generator) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(x), (JUDGE_BATCH,), generator=generator)
        flip = (torch.rand(JUDGE_BATCH, generator=generator) < 0.5)[:, None, None, None]
        xb = torch.where(flip, x[batch].flip(3), x[batch])
        loss = F.cross_entropy(model(xb), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()


@torch.no_grad()
def _accuracy(model: ShapesClassifier, x: Tensor, y: Tensor) -> float:
    predictions = torch.cat([model(part).argmax(dim=1) for part in x.split(500)])
    return float((predictions == y).float().mean())


def load_shapes_judge(kind: str, resolution: int, *, judge: JudgeConfig | None = None, cache_dir: Path | None = None,
                      device: torch.device | str = "cpu", progress: bool = False) -> ShapesJudge:
    """The ``kind`` ("rgb" or "depth") judge at ``resolution``: loaded from the cache, or
    trained on the judge training set and scored on the real images of the held-out one
    (both rendered into the cache on first use), then cached atomically."""
    if kind not in ("rgb", "depth"):
        raise ValueError(f"kind must be 'rgb' or 'depth', got {kind!r}")
    judge = judge or JudgeConfig()
    root = cache_dir or default_cache_dir()
    key = hashlib.sha256(f"{JUDGE_FORMAT}|{kind}|{resolution}|{sorted(asdict(judge).items())}".encode()).hexdigest()[:12]
    cache = root / f"shapes-judge-{kind}-r{resolution}-{key}.safetensors"
    num_classes = len(CLASS_NAMES) + (1 if kind == "depth" else 0)
    model = ShapesClassifier(num_classes, 3 if kind == "rgb" else 1, center=kind == "rgb")
    if cache.exists():
        state = load_file(str(cache))
        accuracy = float(state.pop("_accuracy").item())
        model.load_state_dict(state)
        return ShapesJudge(model, kind, f"shapes-{kind}-{key}", accuracy).to(device)
    paths = []
    for per_class, seed in ((judge.train_per_class, judge.train_seed), (judge.heldout_per_class, judge.heldout_seed)):
        path = shapes_dataset_path(resolution, per_class, seed, root=root)
        paths.append(make_shapes_dataset(path, resolution=resolution, per_class=per_class, seed=seed, progress=progress))
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y, _ = _judge_data(kind, paths[0], g)
    _fit(model, x, y, judge.steps, g)
    x, y, real = _judge_data(kind, paths[1], g)
    accuracy = _accuracy(model, x[:real], y[:real])  # on real held-out items (not on flat cards)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    save_file({**model.state_dict(), "_accuracy": torch.tensor([accuracy])}, str(tmp))
    os.replace(tmp, cache)
    return ShapesJudge(model, kind, f"shapes-{kind}-{key}", accuracy).to(device)
