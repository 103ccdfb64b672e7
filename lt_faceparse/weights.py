"""Model weight files: one ``.safetensors`` file with our JSON metadata in its header.

Loading never unpickles anything: safetensors holds raw tensors only. The metadata says how to
rebuild the model through the registry (``model`` + ``model_kwargs``) and how it was made
(taxonomy, input resolution, source, merge preset, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from lt_faceparse.atomic import atomic_path
from lt_faceparse.errors import DataError

METADATA_KEY = "lt_faceparse"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model", "model_kwargs", "taxonomy", "resolution")


def save_model(model: nn.Module, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write ``model``'s state dict and ``metadata`` atomically to ``path`` (a ``.safetensors`` file).

    ``metadata`` needs ``model`` (registry name), ``model_kwargs`` (constructor arguments),
    ``taxonomy`` and ``resolution``; anything JSON-serialisable may follow.
    """
    from safetensors.torch import save_file

    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise ValueError(f"save_model: metadata lacks {missing}")
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / "model.safetensors"
    # safetensors refuses shared storage; clone to contiguous, independent tensors.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    header = {METADATA_KEY: json.dumps({"format_version": FORMAT_VERSION, **metadata})}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=header)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a weight file, validated; errors name the file."""
    from safetensors import safe_open

    path = _resolve(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except Exception as err:  # safetensors raises its own error types
        raise DataError(path, f"not a readable safetensors file ({err})") from None
    if METADATA_KEY not in header:
        raise DataError(path, "safetensors file has no lt-faceparse metadata (was it written by save_model?)")
    try:
        meta = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise DataError(path, f"corrupt metadata JSON ({err})") from None
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise DataError(path, f"metadata lacks {missing}")
    return meta


def load_model(path: str | Path, *, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model named in the metadata, load the weights strictly, return (model in eval mode, metadata)."""
    from safetensors.torch import load_file

    from lt_faceparse.models import build_model

    path = _resolve(path)
    meta = read_metadata(path)
    kwargs = dict(meta["model_kwargs"])
    if "pretrained" in kwargs:
        kwargs["pretrained"] = False  # the file holds every weight
    # Build outside any caller's inference_mode, so the parameters stay ordinary (trainable) tensors.
    with torch.inference_mode(False):
        model = build_model(meta["model"], **kwargs)
        state = load_file(str(path), device=str(map_location))
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches
            raise DataError(path, f"weights do not fit model {meta['model']!r} {kwargs}: {err}") from None
    if result.missing_keys or result.unexpected_keys:
        raise DataError(
            path,
            f"weights do not fit model {meta['model']!r} {kwargs}: "
            f"missing {result.missing_keys[:5]}{'...' if len(result.missing_keys) > 5 else ''}, "
            f"unexpected {result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}",
        )
    model.to(map_location).eval()
    return model, meta


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weight file")
    return path
