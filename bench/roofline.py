"""Device peaks and the roofline floors used by the bench suites.

A kernel's floors are charged separately: DRAM (compulsory bytes / HBM peak) and tensor or
FMA compute (flops / peak); its roofline floor is the larger, the time it could not beat
even if it were perfectly bound by that resource. Peaks are the vendor's dense figures (no
sparsity); a device missing from the table gets no floors. There is no L2 floor: the first
GPU run (H100, 2026-11-26) showed that the L2 bandwidth measured by timing one sum of an
L2-resident buffer per launch was launch latency (0.6-0.9 TB/s, under HBM's 3.35), and that the
triplane gathers' reuse lives in L1, so kernels ran up to 3.2x under such a "floor".
"""
from __future__ import annotations

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


def floors(dram_bytes: float, flops: float, precision: str) -> dict[str, float]:
    """``dram_floor_ms``, ``compute_floor_ms`` and their maximum ``roofline_floor_ms``
    (empty on a CPU or an unknown device)."""
    peaks = device_peaks()
    if peaks is None:
        return {}
    bandwidth, fp32, tf32, bf16 = peaks
    rate = {"ieee": fp32, "tf32": tf32, "bf16": bf16}[precision]
    out = {"dram_floor_ms": dram_bytes / bandwidth * 1e3, "compute_floor_ms": flops / rate * 1e3}
    out["roofline_floor_ms"] = max(out.values())
    return out


def report(ms: float, floor: dict[str, float]) -> dict[str, float | None]:
    """The floors and the fraction of the roofline floor a median of ``ms`` reaches."""
    fraction = floor["roofline_floor_ms"] / ms if floor else None
    return {**floor, "roofline_fraction": fraction}


def bias_act_dram_bytes(elements: int, backward: bool) -> float:
    """Compulsory DRAM bytes of one fp32 ``bias_lrelu`` call on ``elements`` values: the
    forward reads x and writes y, 8 bytes each; the backward reads the incoming gradient
    and y (or x) and writes x's gradient, 12 bytes each (the bias gradient's reduction can
    share that pass; the per-channel vectors are negligible). ``backward``: forward +
    backward."""
    return elements * (8 + (12 if backward else 0))


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
