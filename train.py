"""Thin alias for `tri3d train`: with no arguments, trains the tiny preset on the
embedded shapes set (minutes on a CPU)."""
from __future__ import annotations

import sys

from tri3d.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
