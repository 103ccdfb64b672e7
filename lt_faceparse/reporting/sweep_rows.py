"""Reading the summary rows (``sweep.json``) that :mod:`lt_faceparse.experiments.sweep` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lt_faceparse.atomic import read_json

SWEEP_FILE = "sweep.json"


def load_sweep_row(path: str | Path) -> dict[str, Any]:
    """Read and validate one ``sweep.json``; errors name the file."""
    return read_json(path, "sweep row", kind="sweep",
                     required=("name", "axis", "model", "resolution", "mean_f1", "fps", "params"))


def find_sweep_rows(root: str | Path) -> list[dict[str, Any]]:
    """Every ``sweep.json`` under ``root`` (recursively), in path order."""
    return [load_sweep_row(p) for p in sorted(Path(root).rglob(SWEEP_FILE))]
