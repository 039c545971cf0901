"""File permissions of what tri3d writes through temporary names.

``mkdtemp`` creates 0700 folders and ``mkstemp`` 0600 files (and some writers, such as
safetensors, create 0600 files): published as they are, others could not read a shared
run, dataset or cache. These give them the permissions a plain ``mkdir`` / ``open`` would
have under the process's umask.
"""
from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def chmod_as_created(path: str | os.PathLike) -> None:
    """``path`` (a file, or a folder and everything in it) gets the mode a plain
    ``open`` / ``mkdir`` gives under the current umask."""
    mask = current_umask()
    path = Path(path)
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(Path(root) / name, 0o777 & ~mask)
            for name in files:
                os.chmod(Path(root) / name, 0o666 & ~mask)
        os.chmod(path, 0o777 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)
