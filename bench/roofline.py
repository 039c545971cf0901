"""Device peaks and the roofline floors used by the bench suites.

A kernel's floors are charged separately: DRAM (compulsory bytes / HBM peak), L2 (every
byte its loads, stores and atomics move through L2 / the L2 read bandwidth measured on this
device) and tensor or FMA compute (flops / peak); its roofline floor is the largest, the
time it could not beat even if it were perfectly bound by that resource. Peaks are the
vendor's dense figures (no sparsity); a device missing from the table gets no floors.
"""
from __future__ import annotations

import functools

import torch

# name fragment -> (HBM bytes/s, fp32 FMA flop/s, tf32 tensor flop/s, bf16 tensor flop/s)
PEAKS = {
    "H100 SXM": (3.35e12, 67e12, 494e12, 989e12),
    "H100 PCIe": (2.0e12, 51e12, 378e12, 756e12),
    "H100": (3.35e12, 67e12, 494e12, 989e12),
    "H200": (4.8e12, 67e12, 494e12, 989e12),
    "A100": (2.0e12, 19.5e12, 156e12, 312e12),
}


def device_peaks() -> tuple[float, float, float, float] | None:
    """Peaks of the current CUDA device, or None (CPU or unknown device)."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    for key, peaks in PEAKS.items():
        if key in name:
            return peaks
    return None


@functools.lru_cache(maxsize=1)
def _l2_bandwidth() -> float | None:
    from timing import l2_read_bytes_per_s

    return l2_read_bytes_per_s()


def floors(dram_bytes: float, l2_bytes: float, flops: float, precision: str) -> dict[str, float]:
    """``dram_floor_ms``, ``l2_floor_ms``, ``compute_floor_ms`` and their maximum
    ``roofline_floor_ms`` (empty on a CPU or an unknown device)."""
    peaks = device_peaks()
    if peaks is None:
        return {}
    bandwidth, fp32, tf32, bf16 = peaks
    rate = {"ieee": fp32, "tf32": tf32, "bf16": bf16}[precision]
    out = {"dram_floor_ms": dram_bytes / bandwidth * 1e3, "compute_floor_ms": flops / rate * 1e3}
    l2 = _l2_bandwidth()
    if l2:
        out["l2_floor_ms"] = l2_bytes / l2 * 1e3
    out["roofline_floor_ms"] = max(out.values())
    return out


def report(ms: float, floor: dict[str, float]) -> dict[str, float | None]:
    """The floors and the fraction of the roofline floor a median of ``ms`` reaches."""
    fraction = floor["roofline_floor_ms"] / ms if floor else None
    return {**floor, "roofline_fraction": fraction}


def composite_dram_bytes(rays: int, samples: int, channels: int, backward: bool) -> float:
    """Compulsory DRAM bytes of one fp32 ``composite`` call (every byte is read or written
    once, so L2 traffic is the same): the forward reads sigma, depth and the colour row of
    each sample, (2 + C) x 4 bytes, and writes C + 1 + S - 1 values per ray; the backward
    reads the inputs again plus the cotangents of those outputs and writes the gradients
    of sigma and rgb, (1 + C) x 4 bytes per sample. ``backward``: forward + backward."""
    S, C = samples, channels
    fwd = rays * (S * (2 + C) * 4 + (C + S) * 4)
    return fwd + (fwd + rays * S * (1 + C) * 4 if backward else 0)


def triplane_decode_dram_bytes(points: int, triplanes: int, H: int, W: int, C: int, n_out: int, plane_elem: int,
                               backward: bool) -> float:
    """Compulsory DRAM bytes of one fused ``triplane_decode`` call: the forward reads the
    planes once and 12 bytes of coordinates per point and writes 4 x ``n_out`` bytes per
    point; the backward (one launch, recomputing the forward) reads planes, coordinates and
    the output gradients again, and the fp32 plane gradient is written once."""
    planes = triplanes * 3 * H * W * C
    fwd = planes * plane_elem + points * (12 + 4 * n_out)
    return fwd + (fwd + planes * 4 if backward else 0)
