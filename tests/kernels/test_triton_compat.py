"""Language rules of the oldest supported Triton (3.3) that newer ones, which CI runs,
no longer enforce: checked on the kernels' source so CI catches what only 3.3 would."""
from __future__ import annotations

import ast
from pathlib import Path

import tri3d.kernels

KERNEL_DIR = Path(tri3d.kernels.__path__[0])


def jit_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """Functions decorated with ``triton.jit`` (or ``jit``), with or without arguments."""
    def is_jit(dec: ast.expr) -> bool:
        target = dec.func if isinstance(dec, ast.Call) else dec
        return (isinstance(target, ast.Attribute) and target.attr == "jit") or (
            isinstance(target, ast.Name) and target.id == "jit")

    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and any(map(is_jit, node.decorator_list))]


def chained_boolean_operators(source: str) -> list[str]:
    """``a and b and c`` (one BoolOp of three or more operands) inside a jit function:
    Triton 3.3 refuses it ("chained boolean operators ... are not supported")."""
    found = []
    for fn in jit_functions(ast.parse(source)):
        for node in ast.walk(fn):
            if isinstance(node, ast.BoolOp) and len(node.values) > 2:
                found.append(f"{fn.name}, line {node.lineno}")
    return found


def test_checker_sees_a_chain():
    source = "import triton\n@triton.jit\ndef k(a, b, c):\n    if a and (b or c):\n        pass\n    return a or b or c\n"
    assert chained_boolean_operators(source) == ["k, line 6"]
    assert chained_boolean_operators(source.replace("@triton.jit\n", "")) == []  # plain Python may chain


def test_no_chained_boolean_operators_in_kernels():
    files = sorted(KERNEL_DIR.glob("*.py"))
    assert any(f.name == "triplane_mlp.py" for f in files)
    found = [f"{f.name}: {where}" for f in files for where in chained_boolean_operators(f.read_text())]
    assert not found, "chained boolean operators (Triton 3.3 refuses them):\n" + "\n".join(found)
