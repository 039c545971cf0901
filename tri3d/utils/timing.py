"""Per-stage timing for training: NVTX ranges named by stage plus wall times.

On CUDA, stages are timed with CUDA events and read back lazily (one synchronization per
``summary()``), so timing does not serialize the step; on CPU, ``perf_counter``.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Iterator

import torch

from tri3d.utils.nvtx import nvtx_range

STAGES = ("mapping", "synthesis", "sample+decode", "composite", "importance", "discriminator", "backward",
          "optimizer")


class StageTimer:
    """Accumulates milliseconds per stage name; ``summary()`` returns and resets them."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.cuda = torch.device(device).type == "cuda"
        self._pending: list[tuple[str, object, object]] = []
        self._ms: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        with nvtx_range(f"tri3d.{name}"):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                try:
                    yield
                finally:
                    end.record()
                    self._pending.append((name, start, end))
            else:
                t0 = time.perf_counter()
                try:
                    yield
                finally:
                    self._ms[name] += (time.perf_counter() - t0) * 1e3

    def summary(self) -> dict[str, float]:
        """Milliseconds per stage since the last summary (nested stages count in both)."""
        if self._pending:
            torch.cuda.synchronize()
            for name, start, end in self._pending:
                self._ms[name] += start.elapsed_time(end)
            self._pending.clear()
        out, self._ms = dict(self._ms), defaultdict(float)
        return out


class NullTimer:
    """A timer that records nothing (the default)."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def summary(self) -> dict[str, float]:
        return {}
