"""Saving and loading records: ``record.json`` plus its ``per_image.npz`` side file, written atomically."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from lt_faceparse.atomic import atomic_folder, atomic_save_npz, atomic_write_json, read_json
from lt_faceparse.errors import DataError
from lt_faceparse.metrics.scores import CONVENTIONS
from lt_faceparse.records.migrate import migrate_record_dict
from lt_faceparse.records.provenance import Provenance
from lt_faceparse.records.record import MEAN_KEYS as _MEAN_KEYS
from lt_faceparse.records.record import ResultRecord
from lt_faceparse.records.validate import SCORE_KEYS as _SCORE_KEYS
from lt_faceparse.records.validate import validate_record_dict
from lt_faceparse.custom_taxonomy import adopt_taxonomy


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix.lower() != ".json":
        return path / "record.json", path / "per_image.npz"
    npz = "per_image.npz" if path.name == "record.json" else f"{path.stem}.per_image.npz"
    return path, path.parent / npz


def save_record(record: ResultRecord, out: str | Path) -> Path:
    """Write ``record.json`` (+ ``per_image.npz`` when the record has per-image stats) atomically.
    ``out`` is a folder or a ``.json`` path (side file ``<stem>.per_image.npz`` then). Returns the
    JSON path."""
    json_path, npz_path = _paths(out)
    stats = record.per_image if record.path is not None else record._per_image
    data = record.to_dict()
    # the two files change together (a full disk leaves the earlier record); a .json path shares its folder
    with atomic_folder(json_path.parent, swap=Path(out).suffix.lower() != ".json") as tmp:
        if stats is not None:
            atomic_save_npz(tmp / npz_path.name, **stats.to_arrays())
            data["per_image_file"] = npz_path.name
            data["per_image_sha256"] = hashlib.sha256((tmp / npz_path.name).read_bytes()).hexdigest()
        else:
            data["per_image_file"] = None
        validate_record_dict(data, json_path)
        atomic_write_json(tmp / json_path.name, data)
    record.path, record.per_image_file, record._per_image = json_path, data["per_image_file"], stats
    return json_path


def _none_to_nan(data: dict[str, Any]) -> dict[str, Any]:
    nan = math.nan
    for row in data["per_class"]:
        for k in _SCORE_KEYS:
            row[k] = nan if row[k] is None else float(row[k])
    for k in _MEAN_KEYS:
        data[k] = nan if data[k] is None else float(data[k])
    for g in data["groups"].values():
        for k in _SCORE_KEYS:
            if k in g:
                g[k] = nan if g[k] is None else float(g[k])
    return data


def load_record(path: str | Path) -> ResultRecord:
    """Read and validate a record (a ``.json`` file or a folder holding ``record.json``). Per-image
    stats are read lazily on first access of ``record.per_image``."""
    json_path, _ = _paths(path)
    data = migrate_record_dict(read_json(json_path, "result record"), json_path)
    validate_record_dict(data, json_path)
    data = _none_to_nan(data)
    npz_name = data.get("per_image_file")
    if npz_name is not None and not (json_path.parent / npz_name).is_file():
        raise DataError(json_path.parent / npz_name, f"per-image side file named by {json_path} is missing")
    if npz_name is not None and data.get("per_image_sha256"):
        digest = hashlib.sha256((json_path.parent / npz_name).read_bytes()).hexdigest()
        if digest != data["per_image_sha256"]:
            raise DataError(json_path.parent / npz_name, f"does not match the checksum recorded in {json_path}")
    fields = {k: data.get(k) for k in ("taxonomy", "per_class", *_MEAN_KEYS, "num_images", "provenance", "groups",
                                       "undefined_classes", "bins", "bins_source", "f1_by_bin", "confusion",
                                       "ci", "taxonomy_definition", "schema_version", "per_image_file")}
    fields["conventions"] = data.get("conventions") or dict(CONVENTIONS)
    fields["provenance"] = Provenance.from_dict(data["provenance"], json_path)
    if fields["taxonomy_definition"] is not None:
        adopt_taxonomy(fields["taxonomy_definition"], json_path)  # registered: get_taxonomy(name) works from here
    return ResultRecord(**fields, path=json_path)

