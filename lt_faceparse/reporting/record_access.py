"""Reading result records (and reported rows) as the reporting layer needs them: provenance,
protocol, labels, per-class F1 and intervals, head/tail and presence-bin means."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from lt_faceparse.analysis.bins import BIN_NAMES, f1_by_bin
from lt_faceparse.data.build import merge_order_applies
from lt_faceparse.longtail.spec import posthoc_label
from lt_faceparse.metrics.groups import HEAD, TAIL, group_means, head_tail_ids
from lt_faceparse.records import record_taxonomy
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

PROTOCOL_KEYS = ("dataset", "taxonomy", "split", "merge", "protocol", "posthoc")
NO_POSTHOC = "none"
UNKNOWN = "unknown"
MIXED = "mixed"
NOT_APPLICABLE = "n/a"  # merge preset of data whose labels are stored merged (LaPa, Helen, folder datasets)


def provenance_of(record: Any) -> dict[str, Any]:
    return dict(getattr(record, "provenance", None) or {})


def merge_text(provenance: dict[str, Any]) -> str:
    """The merge preset as printed: the preset, ``n/a`` for data formats without a merge order
    (LaPa, Helen, folder datasets: their labels are stored merged), else ``unknown``.
    ``provenance`` is a record's provenance or a frequency summary (``merge``, ``data_format``,
    ``dataset``)."""
    value = provenance.get("merge")
    if value not in (None, ""):
        return str(value)
    fmt = provenance.get("data_format") or provenance.get("dataset")
    return NOT_APPLICABLE if fmt and merge_order_applies(fmt) is False else UNKNOWN


def protocol_of(record: Any) -> dict[str, str]:
    """The fields that must agree for two records to share a table (``unknown`` when missing;
    merge ``n/a`` for data without a merge order)."""
    prov = provenance_of(record)
    key = {}
    for name in PROTOCOL_KEYS:
        if name == "posthoc":  # records from before post-hoc options existed were scored without them
            key[name] = posthoc_label(prov.get("posthoc")) or NO_POSTHOC
            continue
        value = prov.get(name)
        if value is None and name == "taxonomy":
            value = getattr(record, "taxonomy", None)
        if name == "merge":
            key[name] = merge_text(prov)
            continue
        key[name] = UNKNOWN if value in (None, "") else str(value)
    return key


def is_reported(record: Any) -> bool:
    return bool(provenance_of(record).get("reported", False))


def record_label(record: Any) -> str:
    """Row name: provenance ``label`` when given, else the record's own label
    ("model (backbone) @res")."""
    prov = provenance_of(record)
    if prov.get("label"):
        return str(prov["label"])
    if hasattr(record, "label"):
        return str(record.label)
    return str(prov.get("model") or "model")


def class_f1(record: Any) -> dict[int, float]:
    """Class id -> F1 fraction (NaN for undefined or unreported classes)."""
    out = {}
    for row in getattr(record, "per_class", None) or []:
        value = row.get("f1")
        out[int(row["id"])] = float("nan") if value is None else float(value)
    return out


def head_tail_means(record: Any, taxonomy: Taxonomy) -> tuple[float, float]:
    """Mean F1 over head (non-accessory foreground) and tail (accessory) classes
    (:func:`lt_faceparse.metrics.groups.head_tail_ids`, :class:`~lt_faceparse.metrics.groups.GroupMeanF1`)."""
    f1 = class_f1(record)
    means = group_means([f1.get(i, float("nan")) for i in range(taxonomy.num_classes)], head_tail_ids(taxonomy))
    return means[HEAD], means[TAIL]


def mean_f1_ci(record: Any) -> tuple[float, float] | None:
    """The stored 95% interval of the mean F1, or None."""
    ci = getattr(record, "ci", None)
    if not ci:
        return None
    mean = ci.get("mean_f1") if isinstance(ci, dict) else None
    if not mean or mean.get("lower") is None or mean.get("upper") is None:
        return None
    return float(mean["lower"]), float(mean["upper"])


def class_ci(record: Any) -> dict[str, tuple[float, float]]:
    """Class name -> stored 95% interval of its F1 (classes without one left out)."""
    ci = getattr(record, "ci", None) or {}
    out = {}
    for name, bounds in (ci.get("per_class") or {}).items():
        if bounds and bounds.get("lower") is not None and bounds.get("upper") is not None:
            out[name] = (float(bounds["lower"]), float(bounds["upper"]))
    return out


def bin_f1(record: Any, bins: Mapping[str, Sequence[str]] | None = None) -> dict[str, float]:
    """Presence bin -> mean F1 of the record's foreground classes in that bin.

    Uses the record's own ``f1_by_bin`` when it has one; else ``bins`` (``{bin: [class names]}``,
    e.g. ``FrequencyTable.bins()`` of the training split); else every bin is NaN."""
    raw = getattr(record, "f1_by_bin", None)
    if not raw and bins:
        taxonomy = taxonomy_of_record(record)
        f1 = {taxonomy.names[i]: v for i, v in class_f1(record).items()}
        fg = [taxonomy.names[i] for i in taxonomy.foreground_ids]
        raw = f1_by_bin(f1, {b: [m for m in members if m in f1] for b, members in bins.items()}, fg)
    raw = raw or {}
    out = {}
    for name in BIN_NAMES:
        value = raw.get(name)
        out[name] = float("nan") if value is None else float(value)
    return out


def taxonomy_of_record(record: Any) -> Taxonomy:
    """A record's taxonomy: the one it stores in full, else the registered one of its name, else one
    built from its class names (records written before records held their taxonomy)."""
    if hasattr(record, "taxonomy_definition"):
        return record_taxonomy(record)
    return get_taxonomy(getattr(record, "taxonomy"))


def group_taxonomy(protocol: dict[str, str], records: Sequence[Any]) -> Taxonomy | None:
    """The group's taxonomy (that of its first record)."""
    return taxonomy_of_record(records[0]) if records else None


def protocol_title(protocol: dict[str, str]) -> str:
    posthoc = protocol.get("posthoc", NO_POSTHOC)
    return (f"{protocol['dataset']} / {protocol['split']} split / taxonomy {protocol['taxonomy']} / "
            f"merge {protocol['merge']} / {protocol['protocol']} scoring"
            + ("" if posthoc == NO_POSTHOC else f" / post-hoc: {posthoc}"))


def has_value(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
