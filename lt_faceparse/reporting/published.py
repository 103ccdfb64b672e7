"""Published results as data: ``published_results.json`` -> validated rows, result records, tables.

The JSON holds every row of SegFace's Tables 1a, 1b, 2a and 2b, the ConvNeXt-B row of the release
README and the pretrained FaRL numbers, as printed (percent), each with its provenance: source,
table, venue, resolution, pretraining, checkpoint-selection rule, scoring protocol and merge preset
(``"unknown"`` where the source does not say). Per-class values are stored in the paper's column
order; the table's ``columns`` name them by display name, and reading checks that they are the
taxonomy's :attr:`~lt_faceparse.taxonomy.Taxonomy.display_order` before mapping them to class ids.

Reading also checks every printed mean F1 against the mean of its printed per-class values. Each
per-class F1 is printed with one decimal (within 0.05 of its true value) and the mean with two
(within 0.005), so a faithful row deviates by at most :func:`rounding_bound` = 0.055; rows beyond that
must be listed under ``consistency.violations`` in the file.
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from lt_faceparse.atomic import read_json
from lt_faceparse.errors import DataError
from lt_faceparse.metrics.protocol import PROTOCOLS
from lt_faceparse.records import reported_record
from lt_faceparse.taxonomy import get_taxonomy

PUBLISHED_PATH = Path(__file__).with_name("published_results.json")
PUBLISHED_SCHEMA_VERSION = 1

CHECKPOINT_RULES = ("last epoch", "best on test", "unknown")
PUBLISHED_PROTOCOLS = (*PROTOCOLS, "unknown")  # a paper may not say how it scored
MEAN_IOU_CONVENTIONS = ("with_bg", "without_bg")
_ROW_KEYS = ("id", "table", "method", "venue", "dataset", "split", "resolution", "model", "backbone",
             "pretraining", "checkpoint_rule", "protocol", "merge", "per_class_f1", "mean_f1", "mean_iou",
             "mean_iou_convention", "source")
_PERCENT_KEYS = ("mean_f1", "mean_iou")


def rounding_bound(per_class_decimals: int = 1, mean_decimals: int = 2) -> float:
    """Largest |printed mean - mean of printed per-class values| that rounding alone explains."""
    return 0.5 * 10.0**-per_class_decimals + 0.5 * 10.0**-mean_decimals


def mean_f1_deviation(row: dict[str, Any]) -> float | None:
    """Printed mean F1 minus the mean of the printed per-class F1 (None without per-class values)."""
    values = row.get("per_class_f1")
    if not values:
        return None
    return row["mean_f1"] - sum(values) / len(values)


def read_published(path: str | Path | None = None) -> dict[str, Any]:
    """Load and validate the published-results file (the packaged one by default)."""
    path = Path(path) if path is not None else PUBLISHED_PATH
    mtime = path.stat().st_mtime_ns if path.exists() else -1
    return copy.deepcopy(_read_cached(str(path.resolve()), mtime))  # callers may edit their copy


@lru_cache(maxsize=4)
def _read_cached(path: str, _mtime: int) -> dict[str, Any]:
    p = Path(path)
    doc = read_json(p, "published-results file")
    validate_published(doc, p)
    return doc


def validate_published(doc: Any, path: str | Path) -> None:
    """Raise :class:`DataError` naming ``path`` unless ``doc`` is a consistent published-results file."""
    def fail(problem: str):
        raise DataError(path, f"invalid published results: {problem}")

    if not isinstance(doc, dict) or doc.get("kind") != "published_results":
        fail('top level must be an object with "kind": "published_results"')
    if doc.get("schema_version") != PUBLISHED_SCHEMA_VERSION:
        fail(f"schema_version {doc.get('schema_version')!r}; this library reads version {PUBLISHED_SCHEMA_VERSION}")
    for key in ("sources", "tables", "rows", "consistency", "discrepancies"):
        if key not in doc:
            fail(f"missing {key!r}")
    _check_tables(doc["tables"], doc["sources"], fail)
    ids: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(doc["rows"]):
        _check_row(i, row, doc["tables"], ids, fail)
    _check_consistency(doc, ids, fail)


def _check_tables(tables: dict[str, Any], sources: dict[str, Any], fail: Callable[[str], None]) -> None:
    for name, table in tables.items():
        if table.get("source") not in sources:
            fail(f"table {name!r} cites unknown source {table.get('source')!r}")
        if table.get("columns") is not None:
            try:
                tax = get_taxonomy(table["dataset"])
            except KeyError as err:
                fail(f"table {name!r}: {err.args[0]}")
            expected = [tax[i].display for i in tax.display_order]
            if table["columns"] != expected:
                fail(f"table {name!r} columns {table['columns']} differ from the {tax.name} display order {expected}")


def _check_row(i: int, row: Any, tables: dict[str, Any], ids: dict[str, dict[str, Any]],
               fail: Callable[[str], None]) -> None:
    """Check row ``i`` and add it to ``ids`` (id -> row)."""
    where = f"row {i} ({row.get('id', '?')})" if isinstance(row, dict) else f"row {i}"
    if not isinstance(row, dict):
        fail(f"{where} is not an object")
    missing = [k for k in _ROW_KEYS if k not in row]
    if missing:
        fail(f"{where} lacks {missing}")
    if row["id"] in ids:
        fail(f"{where}: duplicate id")
    ids[row["id"]] = row
    table = tables.get(row["table"])
    if table is None:
        fail(f"{where}: unknown table {row['table']!r}")
    if row["source"] != table["source"]:
        fail(f"{where}: source {row['source']!r} differs from its table's {table['source']!r}")
    if table.get("dataset") not in (None, row["dataset"]):
        fail(f"{where}: dataset {row['dataset']!r} but table {row['table']!r} is on {table['dataset']!r}")
    try:
        get_taxonomy(row["dataset"])
    except KeyError as err:
        fail(f"{where}: {err.args[0]}")
    if row["checkpoint_rule"] not in CHECKPOINT_RULES:
        fail(f"{where}: checkpoint_rule {row['checkpoint_rule']!r} not in {CHECKPOINT_RULES}")
    if row["protocol"] not in PUBLISHED_PROTOCOLS:
        fail(f"{where}: protocol {row['protocol']!r} not in {PUBLISHED_PROTOCOLS}")
    if row["mean_iou"] is not None and row["mean_iou_convention"] not in MEAN_IOU_CONVENTIONS:
        fail(f"{where}: a mean IoU needs mean_iou_convention in {MEAN_IOU_CONVENTIONS}")
    for key in _PERCENT_KEYS:
        if row[key] is not None and not (isinstance(row[key], (int, float)) and 0 <= row[key] <= 100):
            fail(f"{where}: {key} = {row[key]!r} is not a percentage")
    if row["mean_f1"] is None:
        fail(f"{where}: mean_f1 is required")
    values = row["per_class_f1"]
    if values is not None:
        columns = table.get("columns")
        if columns is None or len(values) != len(columns):
            fail(f"{where}: {len(values)} per-class values for columns {columns}")
        if not all(isinstance(v, (int, float)) and 0 <= v <= 100 for v in values):
            fail(f"{where}: per-class F1 must be percentages")


def _check_consistency(doc: dict[str, Any], ids: dict[str, dict[str, Any]], fail: Callable[[str], None]) -> None:
    """The rounding bound, the listed violations, duplicate rows and discrepancies against the rows ``ids``."""
    consistency = doc["consistency"]
    bound = rounding_bound()
    if not math.isclose(consistency.get("bound", -1), bound):
        fail(f"consistency.bound {consistency.get('bound')!r} != the rounding bound {bound}")
    violations = set(consistency.get("violations", []))
    for row in ids.values():
        deviation = mean_f1_deviation(row)
        if deviation is not None and abs(deviation) > bound + 1e-9 and row["id"] not in violations:
            fail(f"row {row['id']}: printed mean F1 {row['mean_f1']} deviates by {deviation:+.4f} from the mean "
                 f"of its per-class values, beyond the rounding bound {bound}, and is not listed as a violation")
    for row in ids.values():
        ref = row.get("duplicate_of")
        if ref is None:
            continue
        if ref not in ids:
            fail(f"row {row['id']}: duplicate_of names unknown row {ref!r}")
        other = ids[ref]
        for key in ("dataset", "resolution", "mean_f1", "mean_iou"):
            if row[key] != other[key]:
                fail(f"row {row['id']} repeats {ref} but differs in {key}: {row[key]!r} != {other[key]!r}")
    for item in doc["discrepancies"]:
        unknown = [r for r in item.get("rows", []) if r not in ids]
        if unknown or not item.get("text"):
            fail(f"discrepancy {item!r} names unknown rows {unknown} or has no text")


def published_rows(dataset: str | None = None, table: str | None = None, *, include_duplicates: bool | None = None,
                   path: str | Path | None = None) -> list[dict[str, Any]]:
    """Rows of the file (plain dicts, percent), optionally of one dataset and/or table.

    Rows that repeat another table's row (``duplicate_of``, e.g. Table 2a's Swin = Table 1b at 512)
    are left out unless ``include_duplicates``; by default they are kept only when a ``table`` is asked for.
    """
    doc = read_published(path)
    if include_duplicates is None:
        include_duplicates = table is not None
    rows = []
    for row in doc["rows"]:
        if dataset is not None and row["dataset"] != get_taxonomy(dataset).name:
            continue
        if table is not None and row["table"] != table:
            continue
        if row.get("duplicate_of") and not include_duplicates:
            continue
        rows.append(row)
    return rows


def row_label(row: dict[str, Any]) -> str:
    """Leaderboard row name, e.g. ``"SegFace (swin_base) @512 [AAAI 25]"``."""
    label = row["method"]
    if row.get("backbone"):
        label += f" ({row['backbone']}{'' if row.get('fusion', True) else ', w/o fusion'})"
    if row.get("resolution"):
        label += f" @{row['resolution']}"
    if row.get("checkpoint_rule") == "last epoch" and row["table"] == "farl":
        label += " (last epoch)"
    return f"{label} [{row['venue']}]"


def row_provenance(row: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """Result-record provenance of one published row (``reported=True``)."""
    table = doc["tables"][row["table"]]
    source = doc["sources"][row["source"]]
    params_m = row.get("params_m")
    return {
        "model": row["model"], "method": row["method"], "label": row_label(row), "backbone": row["backbone"],
        "weights": None, "dataset": get_taxonomy(row["dataset"]).name, "split": row["split"],
        "merge": row["merge"], "resolution": row["resolution"], "protocol": row["protocol"],
        "warp": row.get("warp"), "checkpoint_rule": row["checkpoint_rule"], "pretraining": row["pretraining"],
        "num_params": None if params_m is None else round(params_m * 1e6), "params_m": params_m,
        "fps": row.get("fps"), "reported": True, "source": source["citation"], "table": table["name"],
        "venue": row["venue"], "published_id": row["id"], "mean_iou_convention": row["mean_iou_convention"],
        "approximate": bool(row.get("approximate", False)), "notes": row.get("notes"),
    }


def row_record(row: dict[str, Any], doc: dict[str, Any] | None = None):
    """One published row as a :class:`~lt_faceparse.records.ResultRecord` (fractions, not percent)."""
    doc = doc if doc is not None else read_published()
    tax = get_taxonomy(row["dataset"])
    per_class = {}
    if row["per_class_f1"] is not None:
        # columns were checked to be the taxonomy's display order when the file was read
        per_class = {tax.names[cid]: value / 100 for cid, value in zip(tax.display_order, row["per_class_f1"])}
    return reported_record(
        row["method"], per_class, row["mean_f1"] / 100,
        None if row["mean_iou"] is None else row["mean_iou"] / 100,
        row_provenance(row, doc), taxonomy=tax,
        mean_iou_convention=row["mean_iou_convention"] or "with_bg",
    )


def load_published(dataset: str | None = None, table: str | None = None, *, include_duplicates: bool | None = None,
                   path: str | Path | None = None) -> list:
    """Published rows as reported result records (``provenance.reported`` true); see :func:`published_rows`."""
    doc = read_published(path)
    return [row_record(row, doc) for row in published_rows(dataset, table, include_duplicates=include_duplicates,
                                                           path=path)]


def published_frame(table: str, *, path: str | Path | None = None):
    """All rows of one table as a pandas DataFrame (percent as printed), e.g. Table ``"2a"`` or ``"2b"``.

    Columns: id, method, backbone, resolution, mean_f1, mean_iou, mean_iou_convention, fps, params_m,
    checkpoint_rule, protocol, merge, pretraining, source, duplicate_of.
    """
    import pandas as pd  # lazy: pandas (~0.4 s) only for table output

    doc = read_published(path)
    if table not in doc["tables"]:
        raise KeyError(f"no published table {table!r}; known: {sorted(doc['tables'])}")
    columns = ["id", "method", "backbone", "resolution", "mean_f1", "mean_iou", "mean_iou_convention", "fps",
               "params_m", "checkpoint_rule", "protocol", "merge", "pretraining", "source", "duplicate_of"]
    rows = [{c: row.get(c) for c in columns} for row in doc["rows"] if row["table"] == table]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["table"] = doc["tables"][table]["name"]
    frame.attrs["caption"] = doc["tables"][table]["caption"]
    frame.attrs["source"] = doc["sources"][doc["tables"][table]["source"]]["citation"]
    return frame
