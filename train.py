"""Entry point of the main job. Until the training loop lands, it renders a demo triplane grid."""
from __future__ import annotations

import sys

from tri3d.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
