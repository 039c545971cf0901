"""``tools/native_mutants.py``'s list stays in step with the sources it mutates: every
mutant's text occurs exactly once in its file under ``csrc/`` and changes it, and its
tests exist (the tool itself rebuilds the extension per mutant, so it is run by hand)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_tool(monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("native_mutants", ROOT / "tools" / "native_mutants.py")
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, tool)  # its dataclass looks its module up there
    spec.loader.exec_module(tool)
    return tool


def test_every_mutant_matches_its_source_once_and_names_existing_tests(monkeypatch):
    tool = load_tool(monkeypatch)
    assert len({m.name for m in tool.MUTANTS}) == len(tool.MUTANTS)
    for m in tool.MUTANTS:
        text = (ROOT / "csrc" / m.file).read_text()
        assert tool.mutated_text(m, text) != text, m.name  # ValueError unless its text occurs once
        assert m.tests and all((ROOT / t).is_file() for t in m.tests), m.name
