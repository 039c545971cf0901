"""Layer 1: the functional API. Each op has a `_ref` twin and an `impl=` dispatch."""
from __future__ import annotations

from tri3d.ops.bias_act import bias_lrelu, bias_lrelu_ref
from tri3d.ops.composite import composite, composite_ref
from tri3d.ops.importance import importance_depths, importance_depths_ref
from tri3d.ops.merge import merge_samples, merge_samples_ref
from tri3d.ops.modconv import modulated_conv2d, modulated_conv2d_ref
from tri3d.ops.triplane import (
    planes_for_decode,
    sample_triplane,
    sample_triplane_ref,
    triplane_decode,
    triplane_decode_ref,
)

__all__ = [
    "bias_lrelu",
    "bias_lrelu_ref",
    "composite",
    "composite_ref",
    "importance_depths",
    "importance_depths_ref",
    "merge_samples",
    "merge_samples_ref",
    "modulated_conv2d",
    "modulated_conv2d_ref",
    "planes_for_decode",
    "sample_triplane",
    "sample_triplane_ref",
    "triplane_decode",
    "triplane_decode_ref",
]
