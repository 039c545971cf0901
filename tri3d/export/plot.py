"""Learning curves of a run (``metrics.jsonl``) drawn as a PNG with PIL (no plotting
library needed): FID and depth FID against kimg, and rgb / depth-only class accuracy
against kimg beside the judges' accuracy on real images, and the discriminator's own
class accuracy on the judges' held-out real images (``d_class_accuracy``)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tri3d.export.grid import save_png

PANEL_W, PANEL_H, MARGIN = 420, 300, 48
COLOURS = {"fid": (31, 119, 180), "depth_fid": (214, 39, 40), "class_accuracy": (31, 119, 180),
           "depth_class_accuracy": (214, 39, 40), "d_class_accuracy": (44, 160, 44)}
PANELS = (
    ("FID (rgb blue, depth red)", ("fid", "depth_fid"), None),
    ("class accuracy (rgb blue, depth red, D green)", ("class_accuracy", "depth_class_accuracy", "d_class_accuracy"),
     (0.0, 1.0)),
)
# The judge's accuracy on real images, drawn dashed beside the series it bounds.
REFERENCES = {"class_accuracy": "detector_accuracy_on_reals",
              "depth_class_accuracy": "depth_detector_accuracy_on_reals"}


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The rows of ``run_dir/metrics.jsonl`` written during training (``--init`` rows are
    skipped), sorted by kimg."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir} (train with --metrics shapes, or run tri3d metrics)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not JSON ({err})") from err
        if "kimg" in row and not row.get("init"):
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows with a kimg (metrics written during training)")
    return sorted(rows, key=lambda r: r["kimg"])


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def _panel(rows: list[dict], title: str, keys: tuple[str, ...], y_range: tuple[float, float] | None) -> Image.Image:
    img = Image.new("RGB", (PANEL_W, PANEL_H), "white")
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = MARGIN, 24, PANEL_W - 12, PANEL_H - 32
    kimg = [r["kimg"] for r in rows]
    values = [r[k] for r in rows for k in keys if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
    refs = {k: rows[-1][REFERENCES[k]] for k in keys if REFERENCES.get(k) in rows[-1]}
    lo, hi = y_range if y_range is not None else (0.0, max(values, default=1.0) * 1.05 or 1.0)
    kmin, kmax = min(kimg), max(kimg)
    kmax = kmax if kmax > kmin else kmin + 1

    def to_px(k: float, v: float) -> tuple[float, float]:
        return (x0 + (k - kmin) / (kmax - kmin) * (x1 - x0), y1 - (v - lo) / (hi - lo) * (y1 - y0))

    draw.rectangle([x0, y0, x1, y1], outline="black")
    draw.text((x0, 4), title, fill="black")
    for v in _ticks(lo, hi):
        _, py = to_px(kmin, v)
        draw.line([x0 - 4, py, x0, py], fill="black")
        draw.text((4, py - 6), f"{v:.3g}", fill="black")
    for k in _ticks(kmin, kmax):
        px, _ = to_px(k, lo)
        draw.line([px, y1, px, y1 + 4], fill="black")
        draw.text((px - 10, y1 + 6), f"{k:.3g}", fill="black")
    draw.text(((x0 + x1) / 2 - 12, PANEL_H - 14), "kimg", fill="black")
    for key, ref in refs.items():
        _, py = to_px(kmin, ref)
        for px in np.arange(x0, x1, 8):
            draw.line([px, py, min(px + 4, x1), py], fill=COLOURS[key])
    for key in keys:
        points = [to_px(r["kimg"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
                  and math.isfinite(r[key])]
        if len(points) > 1:
            draw.line(points, fill=COLOURS[key], width=2)
        for px, py in points:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=COLOURS[key])
    return img


def plot_learning_curve(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw the run's curves into ``out`` (default ``run_dir/learning_curve.png``)."""
    rows = read_metrics(run_dir)
    panels = [_panel(rows, title, keys, y_range) for title, keys, y_range in PANELS]
    canvas = np.concatenate([np.asarray(p) for p in panels], axis=1)
    return save_png(canvas, Path(out) if out is not None else Path(run_dir) / "learning_curve.png")
