"""Load our SegFace weight files (safetensors + metadata, see ``lt_faceparse.weights``)."""

from __future__ import annotations

from pathlib import Path

import torch

from lt_faceparse.errors import DataError
from lt_faceparse.weights import load_model
from segface.model import SegFace


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> SegFace:
    """Rebuild the SegFace stored at ``path`` (file or folder), in eval mode, with ``.metadata`` attached."""
    model, metadata = load_model(path, map_location=device)
    if not isinstance(model, SegFace):
        raise DataError(path, f"holds a {metadata['model']!r} model, not SegFace")
    model.metadata = metadata
    return model
