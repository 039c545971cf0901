"""Metrics of a generator against its dataset: FID, KID, IS, class accuracy, and with a
depth judge (the embedded shapes set) depth FID / KID and depth-only class accuracy.

Generated views are rendered from poses drawn uniformly over the whole sphere (the
paper's protocol) with classes drawn from the dataset's label distribution. Real-image
statistics are cached per dataset and detector.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from tri3d.data.shapes import default_cache_dir
from tri3d.metrics.scores import feature_stats, frechet_distance, inception_score, kernel_inception_distance
from tri3d.metrics.shapes_judges import FLAT_CARD, depth_nearness, shapes_ground_truth
from tri3d.render.camera import fov_to_intrinsics, sample_sphere_poses


def to_uint8(images: torch.Tensor) -> torch.Tensor:  # [-1, 1] float -> uint8
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def real_features(dataset, detector, *, max_items: int | None = None, batch: int = 256,
                  cache_dir: Path | None = None) -> np.ndarray:
    """Detector features of (up to ``max_items``) dataset images, cached on disk."""
    n = len(dataset) if max_items is None else min(max_items, len(dataset))

    def compute() -> np.ndarray:
        feats = []
        for start in range(0, n, batch):
            imgs = torch.stack([dataset[i][0] for i in range(start, min(n, start + batch))])
            feats.append(detector.features(imgs).cpu().numpy())
        return np.concatenate(feats)

    return _cached_features("real-features", f"{Path(dataset.path).resolve()}|{len(dataset)}|{n}|{detector.name}",
                            compute, cache_dir)


def _cached_features(prefix: str, identity: str, compute, cache_dir: Path | None) -> np.ndarray:
    """``compute()`` as fp64, cached in ``<cache>/<prefix>-<hash of identity>.npy`` (written
    under a unique temporary name, then renamed)."""
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    cache = (cache_dir or default_cache_dir()) / f"{prefix}-{key}.npy"
    if cache.exists():
        return np.load(cache)
    out = np.asarray(compute(), dtype=np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, out)
    os.replace(tmp, cache)
    return out


@torch.no_grad()
def generate_views(G, labels: torch.Tensor, num: int, *, radius: float, fov_deg: float, batch: int = 32,
                   seed: int = 0, truncation_psi: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``num`` views from whole-sphere poses, classes drawn like ``labels``: images (uint8
    ``[num, 3, H, W]``), classes ``[num]`` and depth nearness ``[num, 1, H, W]`` (see
    ``depth_nearness``; nearest-resized from the neural rendering resolution)."""
    device = next(G.parameters()).device
    g = torch.Generator().manual_seed(seed)
    K = fov_to_intrinsics(fov_deg).to(device)
    images, classes, nearness = [], [], []
    for start in range(0, num, batch):
        n = min(batch, num - start)
        z = torch.randn(n, G.config.z_dim, generator=g).to(device)
        c = labels[torch.randint(len(labels), (n,), generator=g)].to(device) if G.config.num_classes else None
        cams = sample_sphere_poses(n, radius, generator=g)[:, None].to(device)
        with G.deterministic_rendering():  # leaves the global RNG (training's stream) untouched
            out = G(z, c, cams, K, truncation_psi=truncation_psi, noise_mode="const")
        image = out["image"][:, 0]
        near = depth_nearness(out["depth"][:, 0], out["opacity"][:, 0])
        if near.shape[-1] != image.shape[-1]:
            near = torch.nn.functional.interpolate(near, size=image.shape[-2:], mode="nearest")
        images.append(to_uint8(image).cpu())
        nearness.append(near.cpu())
        classes.append(c.cpu() if c is not None else torch.zeros(n, dtype=torch.long))
    return torch.cat(images), torch.cat(classes), torch.cat(nearness)


def real_depth_features(dataset, judge, *, cache_dir: Path | None = None) -> np.ndarray:
    """Depth-judge features of the dataset's ground-truth nearness maps, cached on disk."""

    def compute() -> np.ndarray:
        nearness, _ = shapes_ground_truth(Path(dataset.path))
        return np.concatenate([judge.features(part).cpu().numpy() for part in nearness.split(256)])

    return _cached_features("real-depth-features", f"{Path(dataset.path).resolve()}|{len(dataset)}|{judge.name}",
                            compute, cache_dir)


def _gather(items) -> list:
    """All ranks' ``items`` in rank order (just ``[items]`` without a process group)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [items]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, items)
    return out


def confusion_rows(
    predicted: torch.Tensor,  # [n] int, the judge's label of each view
    classes: torch.Tensor,  # [n] int, the class each view was generated for
    num_classes: int,  # conditioning classes (rows)
    num_labels: int,  # labels the judge can give (columns)
) -> list[list[float]]:
    """Row ``c``: the fraction of class-``c`` views the judge gave each label (a row of
    zeros for a class with no views). The diagonal is each class's accuracy."""
    counts = torch.zeros(num_classes, num_labels, dtype=torch.float64)
    counts.index_put_((classes.long(), predicted.long()), torch.ones(len(classes), dtype=torch.float64),
                      accumulate=True)
    rows = counts / counts.sum(1, keepdim=True).clamp(min=1)
    return [[round(v, 4) for v in row] for row in rows.tolist()]


def evaluate(G, dataset, detector, *, depth_judge=None, num_gen: int = 1000, radius: float, fov_deg: float,
             seed: int = 0, truncation_psi: float = 1.0, kid_subsets: int = 100, is_splits: int = 10,
             cache_dir: Path | None = None) -> dict | None:
    """FID, KID, IS (on the detector's class probabilities) and, for a detector that knows
    its accuracy (the shapes judge), the class accuracy of generated views and
    ``class_confusion`` (``confusion_rows``: per conditioning class, the fraction of its
    views given each label); with ``depth_judge``, ``depth_fid``, ``depth_kid``,
    ``depth_class_accuracy``, ``depth_confusion`` (its last column: flat card) and
    ``depth_flat_fraction`` (views the judge calls a flat card). Called on every rank of a
    process group, each rank renders its share of ``num_gen`` (its own latents); rank 0
    gathers and returns the scores (other ranks return None). ``truncation_psi < 1`` scores
    truncated samples (toward each class's mean ``w``; FID is defined at 1)."""
    t0 = time.perf_counter()
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    share = num_gen // world + (1 if rank < num_gen % world else 0)
    images, labels, nearness = generate_views(G, dataset.labels, share, radius=radius, fov_deg=fov_deg,
                                              seed=seed + 1_000_003 * rank, truncation_psi=truncation_psi)
    feats = np.concatenate([detector.features(b).cpu().numpy() for b in images.split(256)]).astype(np.float64)
    probs_local = torch.cat([detector.probabilities(b).cpu() for b in images.split(256)]).numpy()
    depth_local = None
    if depth_judge is not None:
        depth_local = (np.concatenate([depth_judge.features(b).cpu().numpy() for b in nearness.split(256)]),
                       torch.cat([depth_judge.probabilities(b).cpu() for b in nearness.split(256)]).numpy())
    gathered = _gather((feats, probs_local, labels.numpy(), depth_local))
    if rank != 0:
        return None
    fake = np.concatenate([g[0] for g in gathered])
    probs = torch.from_numpy(np.concatenate([g[1] for g in gathered]))
    classes = torch.from_numpy(np.concatenate([g[2] for g in gathered]))
    real = real_features(dataset, detector, cache_dir=cache_dir)
    result = {
        "fid": frechet_distance(*feature_stats(real), *feature_stats(fake)),
        "kid": kernel_inception_distance(real, fake, num_subsets=kid_subsets),
        "num_gen": num_gen, "num_real": int(real.shape[0]), "detector": detector.name,
        "truncation_psi": truncation_psi,
    }
    if num_gen >= is_splits:
        result["is_mean"], result["is_std"] = inception_score(probs.numpy(), splits=is_splits)
    if getattr(detector, "accuracy", None) is not None and G.config.num_classes:
        result["class_accuracy"] = float((probs.argmax(1) == classes).float().mean())
        result["class_confusion"] = confusion_rows(probs.argmax(1), classes, G.config.num_classes, probs.shape[1])
        result["detector_accuracy_on_reals"] = detector.accuracy
    if depth_judge is not None:
        fake_depth = np.concatenate([g[3][0] for g in gathered]).astype(np.float64)
        depth_pred = torch.from_numpy(np.concatenate([g[3][1] for g in gathered])).argmax(1)
        real_depth = real_depth_features(dataset, depth_judge, cache_dir=cache_dir)
        result.update(
            depth_fid=frechet_distance(*feature_stats(real_depth), *feature_stats(fake_depth)),
            depth_kid=kernel_inception_distance(real_depth, fake_depth, num_subsets=kid_subsets),
            depth_flat_fraction=float((depth_pred == FLAT_CARD).float().mean()),
            depth_detector=depth_judge.name, depth_detector_accuracy_on_reals=depth_judge.accuracy,
        )
        if G.config.num_classes:
            result["depth_class_accuracy"] = float((depth_pred == classes).float().mean())
            result["depth_confusion"] = confusion_rows(depth_pred, classes, G.config.num_classes, FLAT_CARD + 1)
    result["seconds"] = time.perf_counter() - t0
    return result


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
