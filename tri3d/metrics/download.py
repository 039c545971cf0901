"""The published metric networks, fetched into the cache on first use and verified.

FID / KID / IS use StyleGAN2-ADA's TorchScript Inception (``inception-2015-12-05.pt``) and
LPIPS its TorchScript VGG16 (``vgg16.pt``), as EG3D and StyleGAN3 do. Their addresses are
below, in one place. NVIDIA publishes no checksum for them, so a file is accepted after a
structural check (it loads as TorchScript and answers the documented calls with the
documented shapes) and its SHA-256 is recorded beside it on first use; a later change of
the file is refused (trust on first use). Where ``MetricFile.sha256`` is set, that hash is
required instead.

Downloads go to ``<cache>/.<name>.partial`` under an inter-process lock, resume from the
bytes already there (HTTP ``Range``), and are renamed into place only once complete and
verified. ``TRI3D_OFFLINE=1`` forbids network access (the error says where to put the file).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from tri3d.data.shapes import default_cache_dir

CHUNK = 1 << 20  # bytes per read while downloading and hashing
TIMEOUT_S = 60.0  # socket timeout of one request


def check_inception(path: Path) -> None:
    """The Inception call signature of the StyleGAN2-ADA metrics: uint8 images ->
    2048 pool features, or (``no_output_bias=True``) 1008 class probabilities."""
    module = torch.jit.load(str(path), map_location="cpu").eval()
    images = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    with torch.no_grad():
        features = module(images, return_features=True)
        probs = module(images, no_output_bias=True)
    if tuple(features.shape) != (2, 2048) or tuple(probs.shape) != (2, 1008):
        raise ValueError(f"gives features {list(features.shape)} and probabilities {list(probs.shape)}, "
                         "expected [2, 2048] and [2, 1008]")
    if not torch.allclose(probs.sum(dim=1).double(), torch.ones(2, dtype=torch.float64), atol=1e-3):
        raise ValueError("its class probabilities do not sum to 1")


def check_vgg16(path: Path) -> None:
    """The LPIPS call signature of StyleGAN2-ADA's projector: images in [0, 255] ->
    one feature vector per image (``resize_images=False, return_lpips=True``)."""
    module = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.no_grad():
        features = module(torch.full((2, 3, 64, 64), 127.0), resize_images=False, return_lpips=True)
    if features.dim() != 2 or features.shape[0] != 2:
        raise ValueError(f"gives LPIPS features of shape {list(features.shape)}, expected [2, D]")


@dataclass(frozen=True)
class MetricFile:
    url: str  # where it is published
    check: Callable[[Path], None]  # structural check; raises on a file that is not the network
    sha256: str | None = None  # required hash, where one is published


METRIC_FILES = {
    "inception-2015-12-05.pt": MetricFile(
        url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
        check=check_inception),
    "vgg16.pt": MetricFile(
        url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",
        check=check_vgg16),
}


def offline() -> bool:
    return os.environ.get("TRI3D_OFFLINE", "") not in ("", "0")


def metric_file(name: str, cache_dir: Path | None = None) -> Path:
    """The verified local copy of the metric network ``name`` (a key of ``METRIC_FILES``),
    downloaded into the cache first if it is not there.

    Raises:
        FileNotFoundError: offline and not in the cache (the message says where to put it).
        OSError: the download failed or was cut short (run again: it resumes).
        ValueError: the file fails its hash or structural check (a downloaded one is deleted,
            a file placed by the user is left alone).
    """
    spec = METRIC_FILES[name]
    root = Path(cache_dir or default_cache_dir())
    path = root / name
    if path.exists():
        verify(path, spec)
        return path
    if offline():
        raise FileNotFoundError(f"{name} is not in the cache ({path}) and TRI3D_OFFLINE is set: download "
                                f"{spec.url} there, or pass its path")
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{name}.lock"):
        if not path.exists():  # another process may have finished it while we waited
            partial = root / f".{name}.partial"
            _download(spec.url, partial)
            try:
                digest = _verify_new(partial, spec)
            except ValueError:
                partial.unlink()
                raise
            _record(path, digest)
            os.replace(partial, path)
    verify(path, spec)
    return path


def verify(path: Path, spec: MetricFile) -> None:
    """``path`` matches the pinned hash, or the hash recorded on first use (recorded now,
    after the structural check, when there is none). ``ValueError`` naming the file if not."""
    digest = sha256_of(path)
    if spec.sha256 is not None:
        if digest != spec.sha256:
            raise ValueError(f"{path}: SHA-256 {digest} differs from the published {spec.sha256}")
        return
    record = _record_path(path)
    if record.exists():
        expected = record.read_text().strip()
        if digest != expected:
            raise ValueError(f"{path}: changed since it was first used (SHA-256 {digest}, recorded {expected} "
                             f"in {record}); delete both to fetch it again")
        return
    _structural_check(path, spec)
    _record(path, digest)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify_new(partial: Path, spec: MetricFile) -> str:
    digest = sha256_of(partial)
    if spec.sha256 is not None and digest != spec.sha256:
        raise ValueError(f"download of {spec.url}: SHA-256 {digest} differs from the published {spec.sha256}")
    _structural_check(partial, spec)
    return digest


def _structural_check(path: Path, spec: MetricFile) -> None:
    try:
        spec.check(path)
    except Exception as err:  # any failure to load or call means: not the network
        raise ValueError(f"{path}: not the expected network from {spec.url} ({err})") from err


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _record(path: Path, digest: str) -> None:
    record = _record_path(path)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    tmp.write_text(digest + "\n")
    os.replace(tmp, record)


def _download(url: str, partial: Path) -> None:
    """Append ``url``'s bytes to ``partial`` from where it ends; raise ``OSError`` if the
    transfer ends before the announced length (the bytes so far stay for the next try)."""
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left past what we have: start again
            partial.unlink()
            return _download(url, partial)
        raise OSError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise OSError(f"download of {url} failed: {err.reason} (set TRI3D_OFFLINE=1 and put the file in the "
                      "cache, or pass its path)") from err
    with response:
        resumed = response.status == 206
        length = response.headers.get("Content-Length")
        expected = (have if resumed else 0) + int(length) if length is not None else None
        with open(partial, "ab" if resumed else "wb") as f:
            try:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    f.write(chunk)
            except (OSError, http.client.HTTPException) as err:  # IncompleteRead: the server closed early
                raise OSError(f"download of {url} interrupted after {f.tell()} bytes ({err}); run again to "
                              "resume") from err
            got = f.tell()
    if expected is not None and got != expected:
        raise OSError(f"download of {url} ended after {got} of {expected} bytes; run again to resume")


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
