"""Reading records of older schema versions: each step takes a ``record.json`` object one version up.

History (``git log -p`` of ``lt_faceparse/records.py``): every record this library wrote carries
``schema_version``, 1 from the first commit up to 9204aca; an object without one is read as version 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from lt_faceparse.errors import DataError
from lt_faceparse.records.record import SCHEMA_VERSION


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 held provenance as a free object, version 2 declares its keys and their types. Every
    key version-1 writers stored is declared under the same name and meaning, so the content stays
    and only the version changes; an undeclared key is then rejected by validation, naming the file."""
    return {**data, "schema_version": 2}


_STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def migrate_record_dict(data: Any, path: str | Path) -> Any:
    """``data`` (a parsed ``record.json``) brought to :data:`SCHEMA_VERSION`; :class:`DataError`
    naming ``path`` for a version this library cannot read. Anything not a JSON object is returned as
    is (validation rejects it)."""
    if not isinstance(data, dict):
        return data
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise DataError(path, f"invalid result record: schema_version {version!r}; this library reads "
                              f"versions 1 to {SCHEMA_VERSION}")
    while version < SCHEMA_VERSION:
        data = _STEPS[version](data)
        version = data["schema_version"]
    return data
