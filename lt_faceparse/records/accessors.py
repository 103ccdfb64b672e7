"""Reading a record: its protocol, label, remedies, taxonomy and stored intervals.

The functions take a :class:`~lt_faceparse.records.ResultRecord` or any object with the same
attributes (``provenance``, ``per_class``, ``ci`` ...), which is what the reporting layer passes.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from lt_faceparse.analysis.bins import BIN_NAMES, f1_by_bin
from lt_faceparse.data.registry import UNKNOWN, merge_text
from lt_faceparse.errors import DataError
from lt_faceparse.metrics.groups import HEAD, TAIL, group_means, head_tail_ids
from lt_faceparse.records.provenance import Provenance
from lt_faceparse.custom_taxonomy import adopt_taxonomy, taxonomy_from_names
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

PROTOCOL_KEYS = ("dataset", "taxonomy", "split", "merge", "protocol", "posthoc")
NO_POSTHOC = "none"
# the label of a run without training remedies: the value of lt_faceparse.longtail.spec.PLAIN, which
# records cannot import (longtail sits above records; spec must import without torch)
PLAIN = "plain"


# ---- provenance ------------------------------------------------------------------------------------

def provenance_of(record: Any) -> Provenance:
    """The record's provenance (an empty one when it has none)."""
    return getattr(record, "provenance", None) or Provenance()


def record_merge_text(record: Any) -> str:
    """:func:`merge_text` of a record's provenance."""
    prov = provenance_of(record)
    return merge_text(prov.merge, prov.data_format or prov.dataset)


def posthoc_label(posthoc: dict[str, Any] | None) -> str:
    """``τ-norm(τ=0.5)``, ``post-hoc LA(τ=1)``, ``flip TTA``, joined with `` + ``; ``''`` when none is on
    (``posthoc``: the ``provenance.posthoc`` entry of a record)."""
    if not posthoc:
        return ""
    parts = []
    if posthoc.get("tau_norm"):
        parts.append(f"τ-norm(τ={posthoc['tau_norm']:g})")
    if posthoc.get("logit_adjust") is not None:
        towards = ", to target priors" if posthoc.get("target_priors") else ""
        parts.append(f"post-hoc LA(τ={posthoc['logit_adjust']:g}{towards})")
    if posthoc.get("tta"):
        parts.append(f"{posthoc['tta']} TTA")
    return " + ".join(parts)


def training_remedy(provenance: Provenance) -> str:
    """The training remedy of a record: the ``label`` its ``longtail`` entry was written with;
    ``plain`` when it has none or predates remedies."""
    if not isinstance(provenance.longtail, Mapping):
        return PLAIN
    return str(provenance.longtail["label"])


def remedy_parts(provenance: Provenance) -> list[str]:
    """Labels of the training remedies (``provenance.longtail``) and post-hoc options
    (``provenance.posthoc``) of a record; empty for a plain model scored plainly."""
    remedy = training_remedy(provenance)
    parts = [] if remedy == PLAIN else remedy.split(" + ")
    posthoc = posthoc_label(provenance.posthoc)
    return parts + posthoc.split(" + ") if posthoc else parts


def remedy_of(record: Any) -> str:
    """The training remedy label of a record (``plain`` when it has none or predates remedies)."""
    return training_remedy(provenance_of(record))


def record_is_plain(record: Any) -> bool:
    """Trained and scored without any long-tail remedy or post-hoc option: no remedy in ``longtail``,
    ``posthoc`` absent or all off, and ``remedy`` absent or ``plain``."""
    prov = provenance_of(record)
    return prov.remedy in (None, PLAIN) and not remedy_parts(prov)


def record_remedy_description(record: Any) -> str:
    """The record's training remedies and post-hoc options with their parameters (the labels of
    :func:`remedy_parts`, e.g. ``focal(γ=2) + flip TTA``); ``plain`` when it has none."""
    prov = provenance_of(record)
    parts = remedy_parts(prov)
    if not parts and prov.remedy not in (None, PLAIN):
        parts.append(f"remedy {prov.remedy} (parameters not recorded)")
    return " + ".join(parts) or PLAIN


def record_remedy_label(record: Any) -> str:
    """Short name of the record's remedy: provenance ``remedy`` (the benchmark's label), else the
    description, else ``plain``."""
    prov = provenance_of(record)
    if prov.remedy not in (None, PLAIN):
        return str(prov.remedy)
    return record_remedy_description(record)


def protocol_of(record: Any) -> dict[str, str]:
    """The fields that must agree for two records to share a table (``unknown`` when missing;
    merge ``n/a`` for data without a merge order)."""
    prov = provenance_of(record)
    key = {}
    for name in PROTOCOL_KEYS:
        if name == "posthoc":  # records from before post-hoc options existed were scored without them
            key[name] = posthoc_label(prov.posthoc) or NO_POSTHOC
            continue
        value = getattr(prov, name)
        if value is None and name == "taxonomy":
            value = getattr(record, "taxonomy", None)
        if name == "merge":
            key[name] = record_merge_text(record)
            continue
        key[name] = UNKNOWN if value in (None, "") else str(value)
    return key


def is_reported(record: Any) -> bool:
    return provenance_of(record).reported


def record_label(record: Any) -> str:
    """Row name: provenance ``label`` when given, else the record's own label
    ("model (backbone) @res")."""
    prov = provenance_of(record)
    if prov.label:
        return str(prov.label)
    if hasattr(record, "label"):
        return str(record.label)
    return str(prov.model or "model")


def architecture_of(record: Any) -> tuple[str, str, str]:
    """(model, backbone, resolution): what a remedy row is compared against the plain row of."""
    prov = provenance_of(record)
    return str(prov.model), str(prov.backbone), str(prov.resolution)


# ---- scores and taxonomy -----------------------------------------------------------------------------

def class_f1(record: Any) -> dict[int, float]:
    """Class id -> F1 fraction (NaN for undefined or unreported classes)."""
    out = {}
    for row in getattr(record, "per_class", None) or []:
        value = row.get("f1")
        out[int(row["id"])] = float("nan") if value is None else float(value)
    return out


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


def record_taxonomy(record: Any) -> Taxonomy:
    """The taxonomy of a record: the definition it stores (checked against the built-in or registered
    one of that name), else the registered taxonomy of its name, else (records written
    before records held their taxonomy) one built from its class names, whose display names are then
    the class names themselves."""
    if record.taxonomy_definition is not None:
        return adopt_taxonomy(record.taxonomy_definition, record.path, register=False)
    try:
        tax = get_taxonomy(record.taxonomy)
    except KeyError:
        return taxonomy_from_names(record.taxonomy, record.class_names)
    if tax.names != record.class_names:
        raise DataError(record.path, f"class names differ from the registered taxonomy {tax.name!r}")
    return tax


def taxonomy_of_record(record: Any) -> Taxonomy:
    """A record's taxonomy: the one it stores in full, else the registered one of its name, else one
    built from its class names (records written before records held their taxonomy)."""
    if hasattr(record, "taxonomy_definition"):
        return record_taxonomy(record)
    return get_taxonomy(getattr(record, "taxonomy"))


def head_tail_means(record: Any, taxonomy: Taxonomy) -> tuple[float, float]:
    """Mean F1 over head (non-accessory foreground) and tail (accessory) classes
    (:func:`lt_faceparse.metrics.groups.head_tail_ids`, :class:`~lt_faceparse.metrics.groups.GroupMeanF1`)."""
    f1 = class_f1(record)
    means = group_means([f1.get(i, float("nan")) for i in range(taxonomy.num_classes)], head_tail_ids(taxonomy))
    return means[HEAD], means[TAIL]


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
