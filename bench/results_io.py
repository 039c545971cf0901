"""Writing a bench script's results: the whole file replaced atomically after every row,
so a run cut off by its time budget leaves the rows it finished and never a partial file."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write ``rows`` as indented JSON to ``path`` through a temporary file and a rename."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    os.replace(tmp, path)
