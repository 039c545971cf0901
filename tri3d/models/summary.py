"""A readable summary of the networks a config builds (printed by ``tri3d train --dry-run``)."""
from __future__ import annotations

from torch import nn

from tri3d.models.discriminator import Discriminator
from tri3d.models.generator import TriplaneGenerator


def count_parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def _m(n: int) -> str:
    return f"{n / 1e6:.2f} M"


def describe_networks(G: TriplaneGenerator, D: Discriminator) -> str:
    """Parameter counts and structure of G and D, one line per component."""
    g, d = G.config, D.config
    syn = G.synthesis
    blocks = ", ".join(f"{b.resolution}{'' if b.up == 2 or b.conv0 is None else '*'}" for b in syn.blocks)
    dec = G.decoder
    lines = [
        f"G: {_m(count_parameters(G))} parameters, {g.num_classes} classes",
        f"  mapping: {_m(count_parameters(G.mapping))} ({g.mapping_layers} layers, w_dim {g.w_dim}, "
        f"num_ws {syn.num_ws})",
        f"  synthesis: {_m(count_parameters(syn))}; blocks at {blocks} (* = extra non-upsampling block, \"+g\"); "
        f"triplane 3x{g.triplane_channels}x{g.triplane_resolution}x{g.triplane_resolution}",
        f"  decoder: {count_parameters(dec):,} ({g.triplane_channels} -> {g.decoder_hidden} x {g.decoder_layers} -> "
        f"1 + {dec.out_features})",
    ]
    if G.superres is not None:
        sr = " -> ".join(f"{b.conv1.weight.shape[0]} ch @ {b.resolution}{' (up)' if b.up == 2 else ''}"
                         for b in G.superres.blocks)
        lines.append(f"  super-resolution {g.neural_rendering_resolution} -> {g.image_resolution}: "
                     f"{_m(count_parameters(G.superres))} ({sr})")
    cond = (f"label mapping {d.mapping_layers} layers (lr x{d.mapping_lr_multiplier}) -> cmap {D.cmap_dim}"
            if D.cmap is not None else "unconditional")
    lines.append(f"D: {_m(count_parameters(D))} parameters, {D.img_channels} input channels "
                 f"({'dual: image + raw neural rendering' if d.dual else 'image'}), {d.image_resolution}x"
                 f"{d.image_resolution}, {len(D.blocks)} blocks, {cond}")
    return "\n".join(lines)
