"""Progress display: a tqdm bar on a terminal, periodic plain lines anywhere else.

A bar redrawn with carriage returns turns into one multi-megabyte line in a log file or
pipe; there, StyleGAN-style tick lines (one complete line every ``interval`` seconds and
at the end) are what people read.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class LineProgress:
    """The part of tqdm's interface tri3d uses, printing whole lines.

    Args:
        total: number of units to do.
        initial: units already done (a resumed run).
        unit: what a unit is called.
        stream: where lines go (default stderr, as tqdm).
        interval: seconds between lines.
    """

    def __init__(self, total: int, initial: int = 0, unit: str = "it", stream: TextIO | None = None,
                 interval: float = 30.0):
        self.total, self.n, self.unit = total, initial, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._start_n = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._write()

    def set_postfix(self, **values) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.n != self._start_n:
            self._write()

    def _write(self) -> None:
        now = time.monotonic()
        self._last = now
        rate = (self.n - self._start_n) / max(now - self._start, 1e-9)
        percent = 100.0 * self.n / self.total if self.total else 100.0
        line = f"{self.unit} {self.n}/{self.total} ({percent:.1f}%) {rate:.2f} {self.unit}/s {self.postfix}"
        print(line.rstrip(), file=self.stream, flush=True)


def progress_bar(total: int, *, initial: int = 0, unit: str = "it", enabled: bool = True,
                 stream: TextIO | None = None, interval: float = 30.0):
    """A tqdm bar when ``stream`` (default stderr) is a terminal, else ``LineProgress``;
    ``enabled=False`` gives a tqdm that prints nothing."""
    stream = stream if stream is not None else sys.stderr
    if not enabled or stream.isatty():
        return tqdm(total=total, initial=initial, disable=not enabled, unit=unit, file=stream)
    return LineProgress(total, initial, unit, stream, interval)
