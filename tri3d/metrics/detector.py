"""Feature detectors for the metrics.

- The standard one is the TorchScript Inception used by the StyleGAN2-ADA / EG3D metrics
  (``inception-2015-12-05.pt``): ``detector(images_uint8, return_features=True)`` gives the
  2048-d pool features (FID, KID), ``detector(images_uint8, no_output_bias=True)`` the
  softmax class *probabilities* of the logits without output bias (IS). By default it is
  fetched into the cache on first use and verified (``tri3d.metrics.download``).
- ``"shapes"``: the rgb judge of ``tri3d.metrics.shapes_judges`` (a small CNN trained once
  per resolution on a larger shapes set of another seed, cached); its penultimate features
  give FID/KID-style numbers and its predictions the class accuracy of generated views, on
  any machine. Its depth twin scores geometry (``load_metric_detectors``).

Every detector has ``features(uint8 images) -> [N, D]`` and ``probabilities(uint8
images) -> [N, K]`` (rows sum to 1): IS and class predictions read probabilities, whatever
the network computes internally.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

from tri3d.metrics.download import metric_file
from tri3d.metrics.shapes_judges import JudgeConfig, load_shapes_judge

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


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def load_detector(spec: str | None, *, dataset=None, device: torch.device | str = "cpu",
                  cache_dir: Path | None = None, judge: JudgeConfig | None = None):
    """``"shapes"`` (the rgb shapes judge at ``dataset``'s resolution), a TorchScript path,
    or ``None``: the ``TRI3D_DETECTOR`` variable, else the published Inception, fetched
    into the cache on first use and verified (offline with ``TRI3D_OFFLINE=1``)."""
    if spec == "shapes":
        if dataset is None:
            raise ValueError("the shapes detector needs the shapes dataset")
        return load_shapes_judge("rgb", dataset.resolution, judge=judge, cache_dir=cache_dir, device=device)
    given = spec or os.environ.get("TRI3D_DETECTOR")
    if given is None:
        return TorchScriptDetector(metric_file(INCEPTION_FILE, cache_dir), device)
    path = Path(given)
    if not path.is_file():
        raise FileNotFoundError(f"detector not found: {path} (a TorchScript Inception like {INCEPTION_FILE}; "
                                "leave it out to fetch the published one, or use 'shapes' on the shapes set)")
    return TorchScriptDetector(path, device)


def load_metric_detectors(spec: str | None, *, dataset, device: torch.device | str = "cpu",
                          cache_dir: Path | None = None, judge: JudgeConfig | None = None):
    """``(detector, depth_judge)``: with ``"shapes"`` on a dataset that has ground-truth
    depth (the embedded shapes set), the depth judge too; else ``None`` beside the detector."""
    detector = load_detector(spec, dataset=dataset, device=device, cache_dir=cache_dir, judge=judge)
    depth = None
    if spec == "shapes" and (Path(dataset.path) / "ground_truth.npz").exists():
        depth = load_shapes_judge("depth", dataset.resolution, judge=judge, cache_dir=cache_dir, device=device)
    return detector, depth
