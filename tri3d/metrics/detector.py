"""Feature detectors for the metrics.

- The standard one is the TorchScript Inception used by the StyleGAN2-ADA / EG3D metrics
  (``inception-2015-12-05.pt``): ``detector(images_uint8, return_features=True)`` gives the
  2048-d pool features (FID, KID), ``detector(images_uint8, no_output_bias=True)`` the
  softmax class *probabilities* of the logits without output bias (IS). tri3d never
  downloads it: pass a path.
- ``"shapes"``: a small CNN classifier trained once on the embedded shapes set and cached;
  its penultimate features give FID/KID-style numbers and its predictions the class
  accuracy of generated views, on any machine.

Every detector has ``features(uint8 images) -> [N, D]`` and ``probabilities(uint8
images) -> [N, K]`` (rows sum to 1): IS and class predictions read probabilities, whatever
the network computes internally.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from tri3d.data.shapes import default_cache_dir

INCEPTION_FILE = "inception-2015-12-05.pt"


class TorchScriptDetector:
    """Wraps a TorchScript module with the StyleGAN metrics call signature."""

    def __init__(self, path: str | Path, device: torch.device | str = "cpu"):
        self.path = Path(path)
        try:
            self.module = torch.jit.load(str(self.path), map_location=device).eval()
        except Exception as err:
            raise ValueError(f"{self.path}: not a TorchScript detector ({err})") from err
        self.device = torch.device(device)
        self.name = f"ts-{self.path.stem}-{_file_digest(self.path)}"

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:  # [N, 3, H, W] uint8 -> [N, D]
        return self.module(images.to(self.device), return_features=True).float()

    @torch.no_grad()
    def probabilities(self, images: Tensor) -> Tensor:  # [N, 3, H, W] uint8 -> [N, K]
        """The StyleGAN2-ADA convention: ``no_output_bias=True`` returns softmax probabilities."""
        return self.module(images.to(self.device), no_output_bias=True).float()


def _conv_bn(i: int, o: int) -> list[nn.Module]:
    return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]


class ShapesClassifier(nn.Module):
    """Small CNN (conv-BN-ReLU stages) -> global average pool (the features) -> classes.
    Each image's mean colour is removed first (backgrounds are random solid colours)."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(3, width), *_conv_bn(width, width), nn.MaxPool2d(2),
            *_conv_bn(width, 2 * width), *_conv_bn(2 * width, 2 * width), nn.MaxPool2d(2),
            *_conv_bn(2 * width, 4 * width),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def embed(self, images: Tensor) -> Tensor:  # uint8 [N, 3, H, W] -> [N, 4 * width]
        x = images.float() / 127.5 - 1
        x = x - x.mean(dim=(2, 3), keepdim=True)
        return self.body(x).mean(dim=(2, 3))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.embed(images))


class ShapesDetector:
    """The cached shapes classifier as a detector (features = penultimate layer)."""

    def __init__(self, model: ShapesClassifier, name: str, accuracy: float):
        self.model, self.name, self.accuracy = model.eval(), name, accuracy  # eval: BN running statistics

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        return self.model.embed(images)

    @torch.no_grad()
    def probabilities(self, images: Tensor) -> Tensor:
        return self.model(images).softmax(dim=1)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def train_shapes_detector(dataset, *, steps: int = 400, seed: int = 0, cache_dir: Path | None = None) -> ShapesDetector:
    """Train (or load from the cache) the shapes classifier on ``dataset``; 10% held out."""
    key = hashlib.sha256(f"{dataset.path.resolve()}|{len(dataset)}|{steps}|{seed}".encode()).hexdigest()[:12]
    cache = (cache_dir or default_cache_dir()) / f"shapes-detector-{key}.safetensors"
    model = ShapesClassifier(dataset.num_classes)
    if cache.exists():
        state = load_file(str(cache))
        accuracy = float(state.pop("_accuracy").item())
        model.load_state_dict(state)
        model.eval()
        return ShapesDetector(model, f"shapes-{key}", accuracy)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = dataset.labels.clone()
    order = torch.randperm(len(dataset), generator=g)
    held = order[: max(1, len(order) // 10)]
    train = order[len(held):]
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        batch = train[torch.randint(len(train), (64,), generator=g)]
        flip = (torch.rand(len(batch), generator=g) < 0.5)[:, None, None, None]
        x = torch.where(flip, images[batch].flip(3), images[batch])
        loss = F.cross_entropy(model(x), labels[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(images[held]).argmax(1) == labels[held]).float().mean().item()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.tmp")
    save_file({**model.state_dict(), "_accuracy": torch.tensor([accuracy])}, str(tmp))
    os.replace(tmp, cache)
    return ShapesDetector(model, f"shapes-{key}", accuracy)


def load_detector(spec: str | None, *, dataset=None, device: torch.device | str = "cpu",
                  cache_dir: Path | None = None):
    """``"shapes"`` (needs the shapes ``dataset``), a TorchScript path, or ``None``: the
    ``TRI3D_DETECTOR`` variable, else ``<cache>/inception-2015-12-05.pt``."""
    if spec == "shapes":
        if dataset is None:
            raise ValueError("the shapes detector needs the shapes dataset")
        return train_shapes_detector(dataset, cache_dir=cache_dir)
    path = Path(spec or os.environ.get("TRI3D_DETECTOR") or (cache_dir or default_cache_dir()) / INCEPTION_FILE)
    if not path.exists():
        raise FileNotFoundError(
            f"detector not found at {path}. Put the TorchScript Inception of the StyleGAN2-ADA / EG3D metrics "
            f"({INCEPTION_FILE}) there, or pass --detector PATH (or set TRI3D_DETECTOR); "
            "`--detector shapes` works offline on the shapes set"
        )
    return TorchScriptDetector(path, device)
