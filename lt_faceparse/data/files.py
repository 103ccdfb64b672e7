"""File reads shared by the dataset classes and the torch-free class-frequency pass."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from lt_faceparse.errors import DataError


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image, raising :class:`DataError` naming the file on failure."""
    try:
        with Image.open(path) as img:
            img.load()
    except (FileNotFoundError, IsADirectoryError):
        raise DataError(Path(path), "file not found") from None
    except (OSError, ValueError, SyntaxError) as err:  # PIL raises these for bad/truncated files
        raise DataError(Path(path), f"unreadable or truncated image ({err})") from None
    return img


def source_dataset_of(root: str | Path, data_format: str) -> str:
    """What the data under ``root`` is, for grouping results: ``synthface-lt`` for a tree written by
    the SynthFace-LT generator (its ``presence.json`` says so), else the format's name. Generated
    data thus never shares a leaderboard table with the real dataset of the same format."""
    marker = Path(root) / "presence.json"
    try:
        generator = json.loads(marker.read_text()).get("generator") if marker.is_file() else None
    except (OSError, ValueError, AttributeError):
        generator = None
    return "synthface-lt" if generator == "SynthFace-LT" else data_format
