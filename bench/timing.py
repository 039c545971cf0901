"""How the bench suites time a case: GPU time from CUDA events, with every round starting
from the same state.

On CUDA each round runs ``setup()`` (zero gradients, so backward never times an
accumulation the first round did not have) and then writes a buffer larger than the L2
cache (so a small kernel does not find its inputs warm from the previous round), both
outside the timed region; the round itself is bracketed by two CUDA events on the current
stream, with no host synchronization inside. The events are read once at the end.
pytest-benchmark still records a few wall-clock rounds of the same step (with a
synchronize) so its JSON keeps its usual shape; the suites report the event times.

On the CPU the wall clock is the time: pytest-benchmark's rounds, with the same setup.
"""
from __future__ import annotations

import statistics
from typing import Callable

import torch

L2_FLUSH_BYTES = 256 * 2**20  # larger than any current GPU's L2 (H100: 50 MB, H200: 60 MB)
_flush_buffer: torch.Tensor | None = None


def _flush_l2() -> None:
    global _flush_buffer
    if _flush_buffer is None:
        _flush_buffer = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.float32, device="cuda")
    _flush_buffer.zero_()


def cuda_event_ms(step: Callable[[], object], *, rounds: int, warmup: int,
                  setup: Callable[[], object] | None = None, flush_l2: bool = True) -> list[float]:
    """GPU milliseconds of ``rounds`` runs of ``step`` (after ``warmup`` untimed ones), each
    preceded, untimed, by ``setup()`` and an L2 flush."""
    for _ in range(warmup):
        if setup is not None:
            setup()
        step()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(rounds)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(rounds)]
    for start, end in zip(starts, ends):
        if setup is not None:
            setup()
        if flush_l2:
            _flush_l2()
        start.record()
        step()
        end.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def time_case(benchmark, step: Callable[[], object], *, rounds: int, warmup: int,
              setup: Callable[[], object] | None = None) -> dict:
    """Time ``step`` for a bench case; returns ``ms`` (median) and the timer used, for
    ``benchmark.extra_info``. On CUDA: CUDA events as described above; on the CPU:
    pytest-benchmark's wall-clock rounds."""
    if torch.cuda.is_available():
        times = cuda_event_ms(step, rounds=rounds, warmup=warmup, setup=setup)

        def synced() -> None:
            step()
            torch.cuda.synchronize()

        benchmark.pedantic(synced, setup=setup, rounds=3, warmup_rounds=0, iterations=1)
        return {"ms": statistics.median(times), "ms_min": min(times), "ms_max": max(times),
                "timer": "cuda-events, L2 flushed, gradients zeroed"}
    benchmark.pedantic(step, setup=setup, rounds=rounds, warmup_rounds=warmup, iterations=1)
    return {"ms": benchmark.stats.stats.median * 1e3, "timer": "wall clock (CPU)"}


def cuda_peak_mb(step: Callable[[], object], setup: Callable[[], object], *, above_allocated: bool = True
                 ) -> float | None:
    """Peak CUDA memory (MB) of one run of ``step`` after ``setup()`` (``None`` off CUDA):
    above what was allocated before it (the step's own working memory: activations,
    gradients, workspaces), or the whole peak with ``above_allocated=False`` (weights
    included)."""
    if not torch.cuda.is_available():
        return None
    setup()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if above_allocated else 0
    step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20
