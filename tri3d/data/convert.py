"""``tri3d dataset convert``: class folders (``root/<class>/*.jpg``) -> StyleGAN-layout zip."""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

from PIL import Image

from tri3d.data.dataset import IMAGE_EXTENSIONS, to_rgb


def center_crop_resize(img: Image.Image, resolution: int) -> Image.Image:
    """Largest centred square, resized to ``resolution`` (Lanczos), RGB."""
    img = to_rgb(img)
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return img.resize((resolution, resolution), Image.LANCZOS)


def convert_class_folders(source: str | Path, dest: str | Path, resolution: int, *, skip_bad: bool = False) -> dict:
    """Write ``dest`` (a .zip) with ``<class>/<n>.png`` images and ``dataset.json``.

    Classes are the sorted sub-folder names of ``source``; labels are their indices.
    Written to a temporary file and renamed, so ``dest`` is never half-written.

    Returns:
        ``{"images": n, "classes": [...], "skipped": [(path, reason), ...]}``.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise FileNotFoundError(f"source must be a folder of class folders: {source}")
    if dest.suffix != ".zip":
        raise ValueError(f"dest must end in .zip, got {dest}")
    if resolution < 4:
        raise ValueError(f"resolution must be >= 4, got {resolution}")
    classes = sorted(p.name for p in source.iterdir() if p.is_dir())
    if not classes:
        raise FileNotFoundError(f"no class folders in {source}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    labels, skipped = [], []
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for label, cls in enumerate(classes):
                files = sorted(p for p in (source / cls).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
                for k, f in enumerate(files):
                    try:
                        with Image.open(f) as img:
                            out = center_crop_resize(img, resolution)
                    except Exception as err:
                        if not skip_bad:
                            raise ValueError(f"{f}: unreadable image ({err})") from err
                        skipped.append((str(f), str(err)))
                        continue
                    buf = io.BytesIO()
                    out.save(buf, format="PNG")
                    name = f"{label:05d}/{k:08d}.png"
                    zf.writestr(name, buf.getvalue())
                    labels.append([name, label])
            zf.writestr("dataset.json", json.dumps({"labels": labels, "class_names": classes}))
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"images": len(labels), "classes": classes, "skipped": skipped}
