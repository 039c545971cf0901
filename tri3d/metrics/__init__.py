"""Layer 3 evaluation: FID / KID / IS from detector features."""
from __future__ import annotations

from tri3d.metrics.scores import frechet_distance, inception_score, kernel_inception_distance

__all__ = ["frechet_distance", "inception_score", "kernel_inception_distance"]
