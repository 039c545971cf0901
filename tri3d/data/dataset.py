"""Image datasets in the StyleGAN layout: a folder or zip of images plus ``dataset.json``
(``{"labels": [[relative/path.png, class], ...]}``; ``null`` labels = unconditional)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # 16-bit grayscale (PNG opens as I;16 or I)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB showing its visible content: 16-bit grayscale is scaled
    (65535 -> 255), not clipped (PIL's ``convert("RGB")`` clips it to white)."""
    if img.mode in WIDE_GRAY_MODES:
        gray = np.asarray(img, dtype=np.float64) / 257.0
        return Image.fromarray(np.round(gray).clip(0, 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


MAX_CLASSES = 100_000  # a sane bound on labels without class_names (ImageNet-21k has 21,841)


class ImageDataset(torch.utils.data.Dataset):
    """Square RGB images of one resolution with integer class labels.

    Args:
        path: folder or ``.zip`` holding the images and ``dataset.json``.
        skip_bad: drop unreadable images, images of another resolution and images without
            a label instead of raising (``skipped`` lists them). With it, every image is
            fully decoded once at construction; without it only headers are read and a
            decode error later names the file.

    Raises:
        FileNotFoundError: no such folder or zip, or no images in it.
        ValueError: naming the file: unreadable or truncated image, resolution differing
            from the first image's, or no label for an image.
    """

    def __init__(self, path: str | Path, *, skip_bad: bool = False):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"dataset not found: {self.path}")
        self._zip: zipfile.ZipFile | None = None
        names = sorted(n for n in self._list() if n.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {self.path}")
        self.class_names: list[str] | None = None
        labels = self._read_labels()
        self.skipped: list[tuple[str, str]] = []
        self.names: list[str] = []
        label_list: list[int] = []
        self.resolution: int | None = None
        for name in names:
            try:
                if labels is not None and name not in labels:
                    raise ValueError(f"{self._where(name)}: no label in dataset.json")
                self._check_image(name, full=skip_bad)
            except ValueError as err:
                if not skip_bad:
                    raise
                self.skipped.append((name, str(err)))
                continue
            self.names.append(name)
            label_list.append(labels[name] if labels is not None else 0)
        if not self.names:
            raise ValueError(f"{self.path}: every image was skipped ({len(self.skipped)} bad)")
        self.labels = torch.tensor(label_list, dtype=torch.long)
        if labels is None:
            self.num_classes = 0
        else:  # all of class_names when given (a class without images still has its label)
            self.num_classes = len(self.class_names) if self.class_names is not None else int(self.labels.max()) + 1

    # ---------------------------------------------------------------- storage
    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def _list(self) -> list[str]:
        if self.path.is_file():
            if not zipfile.is_zipfile(self.path):
                raise ValueError(f"{self.path}: not a folder or a zip file")
            return self._open_zip().namelist()
        return [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]

    def _read_bytes(self, name: str) -> bytes:
        if self.path.is_file():
            return self._open_zip().read(name)
        return (self.path / name).read_bytes()

    def _where(self, name: str) -> str:
        return f"{self.path}/{name}" if self.path.is_dir() else f"{self.path}:{name}"

    def _read_labels(self) -> dict[str, int] | None:
        try:
            raw = self._read_bytes("dataset.json")
        except (KeyError, FileNotFoundError):
            return None
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{self._where('dataset.json')}: invalid JSON ({err})") from err
        where = self._where("dataset.json")
        if not isinstance(meta, dict):
            raise ValueError(f"{where}: must hold a JSON object with \"labels\", got {type(meta).__name__}")
        if meta.get("labels") is None:
            return None
        names = meta.get("class_names")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ValueError(f"{where}: class_names must be a list of strings")
        self.class_names = names
        limit = len(names) if names is not None else MAX_CLASSES
        if not isinstance(meta["labels"], list):
            raise ValueError(f"{where}: labels must be a list of [path, class] pairs")
        out = {}
        for entry in meta["labels"]:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                    and isinstance(entry[1], int) and not isinstance(entry[1], bool)):
                raise ValueError(f"{where}: labels must be [path, integer class] pairs, got {entry!r}")
            if not 0 <= entry[1] < limit:
                bound = f"{len(names)} class_names" if names is not None else f"at most {MAX_CLASSES} classes"
                raise ValueError(f"{where}: label {entry[1]} of {entry[0]} is outside [0, {limit}) ({bound})")
            out[entry[0]] = entry[1]
        return out

    # ---------------------------------------------------------------- images
    def _check_image(self, name: str, *, full: bool) -> None:
        try:
            with Image.open(io.BytesIO(self._read_bytes(name))) as img:
                size = img.size
                if full:
                    img.load()
        except Exception as err:  # PIL raises many types for bad files
            raise ValueError(f"{self._where(name)}: unreadable image ({err})") from err
        if size[0] != size[1]:
            raise ValueError(f"{self._where(name)}: image is {size[0]}x{size[1]}, must be square")
        if self.resolution is None:
            self.resolution = size[0]
        elif size[0] != self.resolution:
            raise ValueError(f"{self._where(name)}: resolution {size[0]} differs from the dataset's {self.resolution}")

    def load_image(self, name: str) -> torch.Tensor:  # -> [3, R, R] uint8
        try:
            with Image.open(io.BytesIO(self._read_bytes(name))) as img:
                arr = np.asarray(to_rgb(img))
        except Exception as err:
            raise ValueError(f"{self._where(name)}: unreadable image ({err})") from err
        if arr.shape[:2] != (self.resolution, self.resolution):
            raise ValueError(f"{self._where(name)}: resolution {arr.shape[1]} differs from the dataset's {self.resolution}")
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.load_image(self.names[index]), int(self.labels[index])

    def __getstate__(self):  # zip handles do not pickle (DataLoader workers reopen them)
        state = dict(self.__dict__)
        state["_zip"] = None
        return state


class XFlipDataset(torch.utils.data.Dataset):
    """``dataset`` and its mirror image: index ``i < len(dataset)`` is image ``i``, index
    ``len(dataset) + i`` is image ``i`` flipped left-right, with the same label
    (StyleGAN's ``--mirror``: twice the images for D, each class's distribution kept)."""

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return 2 * len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self.dataset)
        if not 0 <= index < 2 * n:
            raise IndexError(f"index {index} out of range for {2 * n} images (mirrored)")
        image, label = self.dataset[index % n]
        return (image.flip(-1) if index >= n else image), label
