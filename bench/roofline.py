"""Device peaks and the roofline floor used by the bench suites.

The floor of a kernel is ``max(bytes / bandwidth, flops / compute_rate)``: the time it
could not beat even if it were perfectly memory- or compute-bound. Peaks are the vendor's
dense figures (no sparsity); a device missing from the table gets no floor.
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


def floor_seconds(bytes_moved: float, flops: float, precision: str) -> float | None:
    """Roofline floor in seconds for a kernel (None when the device is unknown)."""
    peaks = device_peaks()
    if peaks is None:
        return None
    bandwidth, fp32, tf32, bf16 = peaks
    rate = {"ieee": fp32, "tf32": tf32, "bf16": bf16}[precision]
    return max(bytes_moved / bandwidth, flops / rate)
