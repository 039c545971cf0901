"""What the oldest supported torch (2.4) needs of the custom-op registrations, checked on
any torch: 2.4 builds an op's schema only from annotations that are types, not strings."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional

import pytest
import torch
from torch import Tensor

import tri3d
from tri3d.ops import _library

PACKAGE_DIR = Path(tri3d.__path__[0])


def test_custom_op_hands_torch_resolved_annotations(monkeypatch):
    seen = {}

    def recording_custom_op(name, mutates_args):
        def register(fn):
            seen[name] = dict(fn.__annotations__)
            return fn
        return register

    monkeypatch.setattr(torch.library, "custom_op", recording_custom_op)

    def op(x: Tensor, y: Optional[Tensor], k: int) -> tuple[Tensor, Tensor]:  # strings: this module's future import
        return x, x

    assert isinstance(op.__annotations__["x"], str)
    _library.custom_op("tri3d_test::resolved")(op)
    assert seen["tri3d_test::resolved"] == {"x": Tensor, "y": Optional[Tensor], "k": int, "return": tuple[Tensor, Tensor]}


def direct_custom_op_calls(source: str) -> list[int]:
    """Lines that call ``torch.library.custom_op`` (or ``library.custom_op``) directly."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and node.attr == "custom_op"
            and isinstance(node.value, (ast.Attribute, ast.Name))
            and (node.value.attr if isinstance(node.value, ast.Attribute) else node.value.id) == "library"]


def test_checker_sees_a_direct_registration():
    assert direct_custom_op_calls('@torch.library.custom_op("a::b", mutates_args=())\ndef f(x): ...\n') == [1]
    assert direct_custom_op_calls('@custom_op("a::b")\ndef f(x): ...\n') == []


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_ops_register_through_the_helper(path):
    if path == Path(_library.__file__):
        return
    assert direct_custom_op_calls(path.read_text(encoding="utf-8")) == [], (
        f"{path.name} calls torch.library.custom_op directly; use tri3d.ops._library.custom_op (torch 2.4 cannot "
        "read string annotations)")
