"""Validation of a ``record.json`` object of the current schema; every error names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lt_faceparse.errors import DataError
from lt_faceparse.records.provenance import PROVENANCE_KEYS, Provenance
from lt_faceparse.records.record import MEAN_KEYS as _MEAN_KEYS
from lt_faceparse.records.record import SCHEMA_VERSION

SCORE_KEYS = ("f1", "iou", "precision", "recall")
_COUNT_KEYS = ("gt_pixels", "pred_pixels", "intersection")
_REQUIRED = ("schema_version", "taxonomy", "per_class", *_MEAN_KEYS, "num_images", "groups",
             "undefined_classes", "bins", "f1_by_bin", "provenance")


def _is_fraction(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate_record_dict(data: Any, path: str | Path) -> None:
    """Raise :class:`DataError` naming ``path`` unless ``data`` is a valid record of this schema."""
    def fail(problem: str):
        raise DataError(path, f"invalid result record: {problem}")

    if not isinstance(data, dict):
        fail("top level is not a JSON object")
    if data.get("schema_version") != SCHEMA_VERSION:
        fail(f"schema_version {data.get('schema_version')!r}; this library reads version {SCHEMA_VERSION}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        fail(f"missing keys {missing}")
    prov = data["provenance"]
    if not isinstance(prov, dict):
        fail("provenance is not an object")
    missing = [k for k in PROVENANCE_KEYS if k not in prov]
    if missing:
        fail(f"provenance lacks keys {missing}")
    Provenance.from_dict(prov, path)  # no unknown keys, each value of its declared type
    if prov["taxonomy"] != data["taxonomy"]:
        fail(f"provenance.taxonomy {prov['taxonomy']!r} != taxonomy {data['taxonomy']!r}")
    reported = prov["reported"]
    per_class = data["per_class"]
    if not isinstance(per_class, list) or not per_class:
        fail("per_class must be a non-empty list")
    for i, row in enumerate(per_class):
        if not isinstance(row, dict) or row.get("id") != i or not isinstance(row.get("name"), str):
            fail(f"per_class[{i}] must be an object with id {i} and a name")
        for k in SCORE_KEYS:
            if k not in row or not _is_fraction(row[k]):
                fail(f"per_class[{i}] ({row['name']}): {k} = {row.get(k)!r} is not a fraction in [0, 1] or null")
        for k in _COUNT_KEYS:
            if k not in row or not (_is_count(row[k]) or (reported and row[k] is None)):
                fail(f"per_class[{i}] ({row['name']}): {k} = {row.get(k)!r} is not a pixel count")
    for k in _MEAN_KEYS:
        if not _is_fraction(data[k]):
            fail(f"{k} = {data[k]!r} is not a fraction in [0, 1] or null")
    if not (_is_count(data["num_images"]) or (reported and data["num_images"] is None)):
        fail(f"num_images = {data['num_images']!r} is not a count")
    for gname, g in data["groups"].items():
        if not isinstance(g, dict) or not _is_fraction(g.get("f1")) or not _is_fraction(g.get("iou")):
            fail(f"group {gname!r} lacks fractions f1/iou")
    names = [r["name"] for r in per_class]
    definition = data.get("taxonomy_definition")
    if definition is not None:
        if not isinstance(definition, dict) or definition.get("name") != data["taxonomy"]:
            fail(f"taxonomy_definition must be the definition of taxonomy {data['taxonomy']!r}")
        stored = [c.get("name") if isinstance(c, dict) else None for c in definition.get("classes") or []]
        if stored != names:
            fail(f"taxonomy_definition lists classes {stored}, per_class {names}")
    if not set(data["undefined_classes"]) <= set(names):
        fail(f"undefined_classes {data['undefined_classes']} name unknown classes")
    if data["bins"] is not None:
        for b, members in data["bins"].items():
            if not set(members) <= set(names):
                fail(f"bin {b!r} names unknown classes {sorted(set(members) - set(names))}")
    if data["f1_by_bin"] is not None and not all(_is_fraction(v) for v in data["f1_by_bin"].values()):
        fail("f1_by_bin values must be fractions or null")
    cm = data.get("confusion")
    if cm is not None:
        k = len(per_class)
        if not (isinstance(cm, list) and len(cm) == k and all(isinstance(r, list) and len(r) == k for r in cm)
                and all(_is_count(v) for r in cm for v in r)):
            fail(f"confusion must be a {k} x {k} matrix of counts")
        arr = np.asarray(cm, dtype=np.int64)
        if arr.sum(1).tolist() != [r["gt_pixels"] for r in per_class] or \
                np.diagonal(arr).tolist() != [r["intersection"] for r in per_class]:
            fail("confusion matrix does not match the per-class counts")
    elif not reported:
        fail("a record of our own evaluation must hold its confusion matrix")

