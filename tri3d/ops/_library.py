"""Registering the fused paths as ``torch.library`` custom ops on every supported torch.

``torch.library.custom_op`` builds an op's schema from its Python annotations. Modules
here use ``from __future__ import annotations``, so annotations are strings, which torch
2.4 cannot read ("Parameter x has unsupported type Tensor": importing ``tri3d.ops`` failed
on the oldest supported torch). ``custom_op`` resolves them to types first, as newer
torch (2.13, which CI runs) does itself.
"""
from __future__ import annotations

import typing
from typing import Callable

import torch


def custom_op(name: str, mutates_args: tuple[str, ...] = ()) -> Callable:
    """``torch.library.custom_op(name, mutates_args=...)`` for a function whose annotations
    may be strings; returns the registered op (``register_fake`` / ``register_autograd``)."""

    def register(fn: Callable) -> Callable:
        fn.__annotations__ = typing.get_type_hints(fn)
        return torch.library.custom_op(name, mutates_args=mutates_args)(fn)

    return register
