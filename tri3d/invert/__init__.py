"""Layer 3: single-view 3D reconstruction by pivotal tuning inversion (PTI)."""
from __future__ import annotations

from tri3d.invert.pti import InversionConfig, InversionResult, invert

__all__ = ["InversionConfig", "InversionResult", "invert"]
