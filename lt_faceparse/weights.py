"""Model weight files: one ``.safetensors`` file with our JSON metadata in its header.

Loading never unpickles anything: safetensors holds raw tensors only. The metadata says how to
rebuild the model through the registry (``model`` + ``model_kwargs``) and how it was made
(taxonomy, input resolution, source, merge preset, ...). ``taxonomy`` holds the whole taxonomy
(:meth:`Taxonomy.to_dict`: names, display names, colours, kinds, flip pairs, groups, ...), so a
weight file is all that ``parse``, ``eval``, ``export-onnx`` and ``report`` need;
:func:`taxonomy_of` reads it (and the bare name that files written before this held).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lt_faceparse.atomic import atomic_path
from lt_faceparse.custom_taxonomy import adopt_taxonomy
from lt_faceparse.data.folder import CLASSES_FILE, taxonomy_for_folder
from lt_faceparse.errors import DataError
from lt_faceparse.models import build_model
from lt_faceparse.taxonomy import BUILTIN_TAXONOMIES, Taxonomy, get_taxonomy

METADATA_KEY = "lt_faceparse"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model", "model_kwargs", "taxonomy", "resolution")


def save_model(model: nn.Module, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write ``model``'s state dict and ``metadata`` atomically to ``path`` (a ``.safetensors`` file).

    ``metadata`` needs ``model`` (registry name), ``model_kwargs`` (constructor arguments),
    ``taxonomy`` and ``resolution``; anything JSON-serialisable may follow. ``taxonomy`` (a
    :class:`Taxonomy`, its ``to_dict()`` or the name of a registered one) is stored in full.
    """
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise ValueError(f"save_model: metadata lacks {missing}")
    metadata = {**metadata, "taxonomy": stored_taxonomy(metadata["taxonomy"])}
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / "model.safetensors"
    # safetensors refuses shared storage; clone to contiguous, independent tensors.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    header = {METADATA_KEY: json.dumps({"format_version": FORMAT_VERSION, **metadata})}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=header)
    return path


def stored_taxonomy(taxonomy: Taxonomy | dict[str, Any] | str) -> dict[str, Any]:
    """The full taxonomy dict to store for ``taxonomy`` (a Taxonomy, its dict, or a registered name)."""
    if isinstance(taxonomy, dict):
        return Taxonomy.from_dict(taxonomy).to_dict()  # validated and normalised
    try:
        return get_taxonomy(taxonomy).to_dict()
    except KeyError:
        raise ValueError(f"save_model: taxonomy {taxonomy!r} is not registered in this process; pass the "
                         "Taxonomy itself (or its to_dict()) so that the file can hold it") from None


def taxonomy_of(meta: dict[str, Any], path: str | Path | None = None) -> Taxonomy:
    """The taxonomy a weight file's metadata holds (``path`` names the file in errors).

    A stored dict of a built-in taxonomy must equal the built-in one; any other is rebuilt and
    registered in this process, so ``get_taxonomy(name)`` works downstream. A bare name (files
    written before weight files held their taxonomy) is accepted for built-in or already
    registered taxonomies only."""
    value = meta.get("taxonomy")
    if isinstance(value, dict):
        return adopt_taxonomy(value, path)
    if not isinstance(value, str):
        raise DataError(path, f"metadata 'taxonomy' must be the taxonomy (an object) or its name, got {value!r}")
    try:
        return get_taxonomy(value)
    except KeyError:
        raise DataError(path, f"names taxonomy {value!r}, which is not built in ({', '.join(BUILTIN_TAXONOMIES)}), "
                              "and the file does not hold its classes: it predates self-contained taxonomies in "
                              "weight files. Upgrade it once with lt_faceparse.weights.embed_taxonomy(file, "
                              "taxonomy), e.g. the taxonomy of the training folder "
                              "(lt_faceparse.data.folder.taxonomy_for_folder(ROOT))") from None


def embed_taxonomy(path: str | Path, taxonomy: Taxonomy | str) -> Path:
    """Rewrite an older weight file (atomically, in place) so that it holds ``taxonomy`` in full.

    The taxonomy must have the name the file states and, when the metadata records it, the model's
    number of classes."""
    path = _resolve(path)
    meta = read_metadata(path)
    taxonomy = get_taxonomy(taxonomy)
    named = meta["taxonomy"]["name"] if isinstance(meta["taxonomy"], dict) else meta["taxonomy"]
    if named != taxonomy.name:
        raise DataError(path, f"names taxonomy {named!r}, not {taxonomy.name!r}")
    classes = meta["model_kwargs"].get("num_classes")
    if classes is not None and classes != taxonomy.num_classes:
        raise DataError(path, f"the model predicts {classes} classes; taxonomy {taxonomy.name!r} has "
                              f"{taxonomy.num_classes}")
    state = load_file(str(path))
    meta = {**meta, "taxonomy": taxonomy.to_dict()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a weight file, validated; errors name the file."""
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
    path = _resolve(path)
    meta = read_metadata(path)
    kwargs = dict(meta["model_kwargs"])
    if "pretrained" in kwargs:
        kwargs["pretrained"] = False  # the file holds every weight
    # Build outside any caller's inference_mode, so the parameters stay ordinary (trainable) tensors.
    with torch.inference_mode(False):
        model = build_model(meta["model"], **kwargs)
        state = load_file(str(path), device=str(map_location))
        _warn_non_finite(state, path)
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


def _warn_non_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """Warn (naming the file) when weights are NaN or infinite: such a model predicts one class everywhere."""
    floats = [t for t in state.values() if t.is_floating_point()]
    bad = sum(int((~torch.isfinite(t)).sum()) for t in floats)
    if bad:
        total = sum(t.numel() for t in floats)
        warnings.warn(f"{path}: {bad:,} of {total:,} weights are NaN or infinite; the model's predictions, and any "
                      "score of them, are meaningless", stacklevel=3)


RUN_WEIGHTS = ("final.safetensors", "model.safetensors")  # a training run's final weights, save_model's default


def _resolve(path: str | Path) -> Path:
    """The weight file ``path`` names: the file, or in a folder (a run folder) the first of :data:`RUN_WEIGHTS`."""
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in RUN_WEIGHTS if (path / name).is_file()]
        if not found:
            raise FileNotFoundError(f"{path}: this folder holds no weight file ({' or '.join(RUN_WEIGHTS)}; a "
                                    "training run writes final.safetensors when it ends)")
        path = found[0]
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weight file")
    if path.suffix != ".safetensors" and _is_torch_file(path):
        raise DataError(path, "a PyTorch checkpoint, not a weight file: eval and parse read the .safetensors "
                              "weights a run writes (final.safetensors in its folder)")
    return path


def _is_torch_file(path: Path) -> bool:
    """Whether ``path`` looks like a ``torch.save`` file (a zip archive, or a legacy pickle)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def resolve_taxonomy(spec: str | Path | Taxonomy) -> Taxonomy:
    """The taxonomy a user names on the command line: a built-in or registered name, a weight file
    (``.safetensors``: the taxonomy it carries), a folder dataset root, or its ``classes.txt``."""
    if isinstance(spec, Taxonomy):
        return spec
    path = Path(spec)
    if path.suffix == ".safetensors" and path.is_file():
        return taxonomy_of(read_metadata(path), path)
    if path.is_dir():
        return taxonomy_for_folder(path)
    if path.is_file():
        if path.name != CLASSES_FILE:
            raise DataError(path, f"not a class list: a folder dataset's class list is named {CLASSES_FILE} "
                                  "(or give the dataset root, a weight file or a taxonomy name)")
        return taxonomy_for_folder(path.parent)
    return get_taxonomy(str(spec))
