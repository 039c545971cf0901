"""Activation-memory counter: bytes that autograd saves for backward, on any device."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


class SavedTensorBytes:
    """Counts the distinct storages autograd saves inside the block (``.bytes``).

    A device-independent measure of activation memory (what a fused path exists to cut);
    on a GPU compare with ``torch.cuda.max_memory_allocated``.
    """

    def __init__(self):
        self.bytes = 0
        self._seen: set[int] = set()

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key not in self._seen and t.device.type != "meta":
            self._seen.add(key)
            self.bytes += storage.nbytes()
        return t

    @contextlib.contextmanager
    def count(self) -> Iterator["SavedTensorBytes"]:
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self
