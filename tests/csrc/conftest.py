"""Native-extension tests: skipped when tri3d._C is missing, unless TRI3D_REQUIRE_NATIVE=1
(CI sets it, so a broken build fails instead of silently skipping)."""
from __future__ import annotations

import importlib
import os

import pytest


@pytest.fixture(scope="session")
def native_ext():
    try:
        return importlib.import_module("tri3d._C")
    except ImportError as err:
        if os.environ.get("TRI3D_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip(f"tri3d._C not built: {err}")
