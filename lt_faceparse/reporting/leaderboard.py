"""Leaderboard: result records grouped by comparable protocol, as Table-1-style tables.

Records are grouped by everything that changes what a number means: dataset, taxonomy, split,
merge preset, scoring protocol and post-hoc inference (flip TTA and post-hoc logit adjustment
change the predictions of a trained model and cost extra inference, so such rows form their own
group, ``--mixed`` puts them next to the plain ones with a column). Training-time long-tail remedies
are methods, not protocols: they share the group of their plain model, their method name states the
remedy and its parameters, and a remedy Δ view compares each against the plain model of the same
architecture, backbone and resolution. Rows of different groups are never put in one table; each
group gets its own table whose title states the protocol, and a record lacking one of these
fields forms a group marked "unknown". Inside a group, rows that differ in checkpoint-selection
rule or pretraining are kept but the table notes the difference (the papers mix these silently).

Conventions printed in every caption: per-class F1 from pixel counts pooled over the split; mean
F1 over the foreground classes; mean IoU in both conventions (without background, as the SegFace
paper's text states, and with background, as the SegFace release and DML-CSR compute it); head =
foreground classes that are not accessories, tail = accessories (taxonomy ``kind``); all in
percent with two decimals; 95% CI = percentile bootstrap over test images.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lt_faceparse.analysis.bins import BIN_NAMES
from lt_faceparse.metrics.groups import HEAD, TAIL, group_mean_f1, group_means, head_tail_ids
from lt_faceparse.reporting.tables import Column, Table, file_slug, write_table
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

PROTOCOL_KEYS = ("dataset", "taxonomy", "split", "merge", "protocol", "posthoc")
NO_POSTHOC = "none"
UNKNOWN = "unknown"
MIXED = "mixed"
NOT_APPLICABLE = "n/a"  # merge preset of data whose labels are stored merged (LaPa, Helen, folder datasets)

CONVENTION_NOTE = (
    "F1 per class from pixel counts pooled over the split; mean F1 over foreground classes; "
    "mIoU shown without and with background; Head = non-accessory foreground classes, "
    "Tail = accessory classes; F1@rare/common/frequent = mean F1 of the classes in each presence bin; "
    "95% CI = percentile bootstrap over images; all values in percent. FPS = images/s at batch 1 "
    "(our measurement: device and dtype in the speed record; reported rows: the paper's hardware)."
)


# ---- reading records ----------------------------------------------------------------------------

def provenance_of(record: Any) -> dict[str, Any]:
    return dict(getattr(record, "provenance", None) or {})


def merge_text(provenance: dict[str, Any]) -> str:
    """The merge preset as printed: the preset, ``n/a`` for data formats without a merge order
    (LaPa, Helen, folder datasets: their labels are stored merged), else ``unknown``.
    ``provenance`` is a record's provenance or a frequency summary (``merge``, ``data_format``,
    ``dataset``)."""
    from lt_faceparse.data.build import merge_order_applies

    value = provenance.get("merge")
    if value not in (None, ""):
        return str(value)
    fmt = provenance.get("data_format") or provenance.get("dataset")
    return NOT_APPLICABLE if fmt and merge_order_applies(fmt) is False else UNKNOWN


def protocol_of(record: Any) -> dict[str, str]:
    """The fields that must agree for two records to share a table (``unknown`` when missing;
    merge ``n/a`` for data without a merge order)."""
    from lt_faceparse.longtail.spec import posthoc_label

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
        from lt_faceparse.analysis.bins import f1_by_bin

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


def _speed_for(record: Any, speed_records: Sequence[dict]) -> dict | None:
    from lt_faceparse.speed.harness import select_speed

    prov = provenance_of(record)
    if not speed_records or is_reported(record):
        return None
    return select_speed(speed_records, model=prov.get("model"), backbone=prov.get("backbone"),
                        resolution=prov.get("resolution"))


# ---- building --------------------------------------------------------------------------------------

@dataclass
class LeaderboardGroup:
    """One table: records sharing a protocol."""

    protocol: dict[str, str]
    records: list[Any]
    labels: list[str]
    table: Table
    notes: list[str] = field(default_factory=list)
    delta: Table | None = None

    remedy_deltas: list[Table] = field(default_factory=list)

    @property
    def slug(self) -> str:
        parts = [self.protocol[k] for k in PROTOCOL_KEYS if k != "posthoc" or self.protocol[k] != NO_POSTHOC]
        return "-".join(file_slug(p) for p in parts)


@dataclass
class Leaderboard:
    groups: list[LeaderboardGroup]

    def __len__(self) -> int:
        return len(self.groups)


def group_records(records: Iterable[Any], *, mixed: bool = False) -> list[tuple[dict[str, str], list[Any]]]:
    """Records grouped by :func:`protocol_of`, groups in first-seen order. ``mixed``: group by
    dataset, taxonomy and split only; merge preset and protocol may then differ inside a group
    (the group's value reads ``mixed``) and the table marks them (see :func:`build_leaderboard`)."""
    keys = PROTOCOL_KEYS if not mixed else ("dataset", "taxonomy", "split")
    groups: dict[tuple, tuple[dict, list]] = {}
    for record in records:
        protocol = protocol_of(record)
        key = tuple(protocol[k] for k in keys)
        if key not in groups:
            groups[key] = (dict(protocol), [])
        group_protocol, members = groups[key]
        for k in PROTOCOL_KEYS:
            if group_protocol[k] != protocol[k]:
                group_protocol[k] = MIXED
        members.append(record)
    return list(groups.values())


def taxonomy_of_record(record: Any) -> Taxonomy:
    """A record's taxonomy: the one it stores in full, else the registered one of its name, else one
    built from its class names (records written before records held their taxonomy)."""
    if hasattr(record, "taxonomy_definition"):
        from lt_faceparse.records import record_taxonomy

        return record_taxonomy(record)
    return get_taxonomy(getattr(record, "taxonomy"))


def _taxonomy_for(protocol: dict[str, str], records: Sequence[Any]) -> Taxonomy | None:
    """The group's taxonomy (that of its first record)."""
    return taxonomy_of_record(records[0]) if records else None


def _origin_candidates(record: Any) -> list[str]:
    """Ways to tell a record from others of the same label, most readable first: its run folder (from
    the weights it was scored from), its record's folder, the run named in its provenance, its source."""
    prov = provenance_of(record)
    out = []
    if prov.get("weights"):
        out.append(Path(str(prov["weights"])).parent.name)
    path = getattr(record, "path", None)
    if path is not None:
        out.append(Path(path).parent.name if Path(path).name == "record.json" else Path(path).stem)
    out.extend(str(prov[k]) for k in ("run", "source") if prov.get(k))
    return [c for c in out if c]


def unique_labels(records: Sequence[Any]) -> list[str]:
    """:func:`record_label` of each record; labels that several records share get ``[origin]`` appended,
    the first kind of origin (:func:`_origin_candidates`) that tells them apart, else ``#n``."""
    labels = [record_label(r) for r in records]
    out = list(labels)
    for label in {lab for lab in labels if labels.count(lab) > 1}:
        idx = [i for i, lab in enumerate(labels) if lab == label]
        candidates = [_origin_candidates(records[i]) for i in idx]
        for k in range(max(len(c) for c in candidates)):
            origins = [c[k] if k < len(c) else None for c in candidates]
            if None not in origins and len(set(origins)) == len(origins):
                for i, origin in zip(idx, origins):
                    out[i] = f"{label} [{origin}]"
                break
        else:
            for n, i in enumerate(idx, 1):
                out[i] = f"{label} #{n}"
    return out


def _mixed_notes(records: Sequence[Any]) -> list[str]:
    notes = []
    for field_name, what in (("checkpoint_rule", "checkpoint-selection rule"), ("pretraining", "pretraining")):
        values = {str(provenance_of(r).get(field_name) or UNKNOWN) for r in records}
        if len(values) > 1:
            notes.append(f"Note: rows differ in {what} ({', '.join(sorted(values))}); see the "
                         f"'{'Ckpt' if field_name == 'checkpoint_rule' else 'Pretrain'}' column.")
    return notes


def protocol_title(protocol: dict[str, str]) -> str:
    posthoc = protocol.get("posthoc", NO_POSTHOC)
    return (f"{protocol['dataset']} / {protocol['split']} split / taxonomy {protocol['taxonomy']} / "
            f"merge {protocol['merge']} / {protocol['protocol']} scoring"
            + ("" if posthoc == NO_POSTHOC else f" / post-hoc: {posthoc}"))


def leaderboard_table(records: Sequence[Any], protocol: dict[str, str], *,
                      speed_records: Sequence[dict] = (), labels: Sequence[str] | None = None,
                      bins: Mapping[str, Sequence[str]] | None = None) -> Table:
    """The Table-1-style table of one protocol group (``bins``: presence bins of this group's
    dataset, for records that do not carry their own)."""
    taxonomy = _taxonomy_for(protocol, records)
    labels = list(labels or unique_labels(records))
    class_ids = taxonomy.display_order if taxonomy else []
    columns = [
        Column("method", "Method", "str"),
        Column("source", "Src", "str"),
        Column("resolution", "Res", "str"),
        Column("pretraining", "Pretrain", "str"),
        Column("checkpoint_rule", "Ckpt", "str"),
    ]
    if protocol.get("merge") == MIXED:
        columns.append(Column("merge", "Merge", "str"))
    if protocol.get("protocol") == MIXED:
        columns.append(Column("protocol", "Protocol", "str"))
    if protocol.get("posthoc") == MIXED:
        columns.append(Column("posthoc", "Post-hoc", "str"))
    columns += [Column(f"f1_{i}", taxonomy[i].display, "pct", "max") for i in class_ids]
    columns += [
        Column("mean_f1", "Mean F1", "pct", "max"),
        Column("ci", "95% CI (mF1)", "ci"),
        Column("miou_nobg", "mIoU (no bg)", "pct", "max"),
        Column("miou_bg", "mIoU (w/ bg)", "pct", "max"),
        Column("head", "Head F1", "pct", "max"),
        Column("tail", "Tail F1", "pct", "max"),
    ]
    columns += [Column(f"bin_{b}", f"F1@{b}", "pct", "max") for b in BIN_NAMES]
    columns += [Column("params", "Params (M)", "millions"), Column("fps", "FPS", "float", "max")]

    rows = []
    for label, record in zip(labels, records):
        prov = provenance_of(record)
        f1 = class_f1(record)
        head, tail = head_tail_means(record, taxonomy) if taxonomy else (float("nan"), float("nan"))
        speed = _speed_for(record, speed_records)
        row = {
            "method": label,
            "source": "reported" if is_reported(record) else "ours",
            "resolution": str(prov.get("resolution") or "-"),
            "pretraining": str(prov.get("pretraining") or "-"),
            "checkpoint_rule": str(prov.get("checkpoint_rule") or "-"),
            "merge": protocol_of(record)["merge"],
            "protocol": protocol_of(record)["protocol"],
            "posthoc": protocol_of(record)["posthoc"],
            "mean_f1": getattr(record, "mean_f1", None),
            "ci": mean_f1_ci(record),
            "miou_nobg": getattr(record, "mean_iou_without_bg", None),
            "miou_bg": getattr(record, "mean_iou_with_bg", None),
            "head": head,
            "tail": tail,
            "params": (speed or {}).get("params") or prov.get("num_params"),
            "fps": (speed or {}).get("fps") or prov.get("fps"),
        }
        row.update({f"f1_{i}": f1.get(i) for i in class_ids})
        row.update({f"bin_{b}": v for b, v in bin_f1(record, bins).items()})
        rows.append(row)

    # drop columns nobody has a value for (e.g. bins on reported-only tables, FPS without timings)
    optional = {"ci", "miou_bg", "miou_nobg", "tail", "params", "fps", *(f"bin_{b}" for b in BIN_NAMES)}
    columns = [c for c in columns if c.key not in optional or any(_present(r.get(c.key)) for r in rows)]
    if taxonomy is not None and not taxonomy.accessory_ids:  # no tail: the head mean is the mean F1
        columns = [c for c in columns if c.key not in ("head", "tail")]
    fps_note = ""
    timed = [s for s in (_speed_for(r, speed_records) for r in records) if s]
    if timed:
        devices = sorted({f"{s['device_name']} ({s['device']}, {s['dtype']}, {s['num_threads']} threads)" for s in timed})
        fps_note = f" Our FPS measured on {'; '.join(devices)}."
    return Table(
        columns=columns,
        rows=rows,
        title=protocol_title(protocol),
        caption=CONVENTION_NOTE + fps_note + " Best value per column in bold.",
    )


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def find_reference(records: Sequence[Any], labels: Sequence[str], reference: str) -> int | None:
    """Index of the record whose label matches ``reference`` (exact, then unique substring; case-insensitive)."""
    ref = reference.lower()
    exact = [i for i, lab in enumerate(labels) if lab.lower() == ref]
    if exact:
        return exact[0]
    partial = [i for i, lab in enumerate(labels) if ref in lab.lower()]
    return partial[0] if len(partial) == 1 else None


def delta_table(records: Sequence[Any], labels: Sequence[str], ref_index: int, protocol: dict[str, str], *,
                n_resamples: int = 1000, seed: int = 0, class_sets: Mapping[str, Sequence[int]] | None = None,
                title: str | None = None) -> Table:
    """Per-class ΔF1 of every record against the reference, with paired-bootstrap significance.

    Cells are ``F1(row) - F1(reference)`` in percent points; ``*`` marks a difference whose paired
    bootstrap 95% interval excludes 0 (only where both records carry per-image stats on the same
    images). Rows without such stats show the plain difference. ``class_sets`` (e.g. ``{"Head":
    ids, "Tail": ids}``) adds, per set, the Δ of its mean F1 with its 95% interval and p-value
    (same resamples as the per-class test).
    """
    from lt_faceparse.errors import IncomparableError
    from lt_faceparse.metrics.bootstrap import paired_bootstrap, paired_bootstrap_subsets, per_image_of

    taxonomy = _taxonomy_for(protocol, records)
    class_ids = taxonomy.display_order if taxonomy else []
    sets = {name: list(ids) for name, ids in (class_sets or {}).items() if ids}
    ref = records[ref_index]
    ref_f1 = class_f1(ref)
    columns = [Column("method", "Method", "str")]
    columns += [Column(f"d_{i}", f"Δ {taxonomy[i].display}", "rstr") for i in class_ids]
    columns += [Column("d_mean", "Δ Mean F1", "rstr"), Column("d_ci", "95% CI (Δ mF1)", "ci"),
                Column("p", "p (Δ mF1)", "float3")]
    for name in sets:
        columns += [Column(f"d_set_{name}", f"Δ {name} F1", "rstr"),
                    Column(f"ci_set_{name}", f"95% CI (Δ {name})", "ci"),
                    Column(f"p_set_{name}", f"p (Δ {name})", "float3")]
    columns.append(Column("test", "Test", "str"))
    rows = []
    for i, (label, record) in enumerate(zip(labels, records)):
        if i == ref_index:
            continue
        f1 = class_f1(record)
        test, no_test = None, None
        if per_image_of(ref) is None or per_image_of(record) is None:
            no_test = "none (no per-image stats)"
        else:
            try:
                test = paired_bootstrap(ref, record, taxonomy, n_resamples=n_resamples, seed=seed)
            except IncomparableError:  # the documented condition: not scored on the same images
                no_test = "none (not scored on the same images)"
        row: dict[str, Any] = {"method": label}
        for k in class_ids:
            delta = f1.get(k, float("nan")) - ref_f1.get(k, float("nan"))
            mark = ""
            if test is not None and _present(test.lower[k]) and (test.lower[k] > 0 or test.upper[k] < 0):
                mark = "*"
            row[f"d_{k}"] = "-" if math.isnan(delta) else f"{100 * delta:+.2f}{mark}"
        mean_a, mean_b = getattr(ref, "mean_f1", None), getattr(record, "mean_f1", None)
        if test is not None:
            mark = "*" if (test.mean_lower > 0 or test.mean_upper < 0) else ""
            row["d_mean"] = f"{100 * test.mean_delta:+.2f}{mark}"
            row["d_ci"] = (test.mean_lower, test.mean_upper)
            row["p"] = test.mean_p_value
            row["test"] = f"paired bootstrap ({test.num_images} images, {test.n_resamples} resamples)"
            subsets = paired_bootstrap_subsets(ref, record, sets, n_resamples=n_resamples, seed=seed) if sets else {}
            for name, sub in subsets.items():
                mark = "*" if (sub.lower > 0 or sub.upper < 0) else ""
                row[f"d_set_{name}"] = "-" if math.isnan(sub.delta) else f"{100 * sub.delta:+.2f}{mark}"
                row[f"ci_set_{name}"] = (sub.lower, sub.upper)
                row[f"p_set_{name}"] = sub.p_value
        else:
            row["d_mean"] = "-" if not (_present(mean_a) and _present(mean_b)) else f"{100 * (mean_b - mean_a):+.2f}"
            row["test"] = no_test
            for name, ids in sets.items():
                da, db = (float(group_mean_f1([class_f1(r).get(i, float("nan")) for i in ids], range(len(ids))))
                          for r in (ref, record))
                row[f"d_set_{name}"] = "-" if math.isnan(db - da) else f"{100 * (db - da):+.2f}"
        rows.append(row)
    set_note = "".join(f" Δ {name} F1 = change of the mean F1 over the {name.lower()} classes "
                       f"({', '.join(taxonomy[i].display for i in ids) if taxonomy else ids}), with its p-value."
                       for name, ids in sets.items())
    return Table(
        columns=columns,
        rows=rows,
        title=title or f"Δ F1 vs {labels[ref_index]} — {protocol_title(protocol)}",
        caption=("Δ = F1(row) − F1(reference) in percent points. * = the paired bootstrap 95% interval "
                 "over test images excludes 0 (same images scored by both models); p = two-sided "
                 "bootstrap p-value of Δ mean F1 = 0." + set_note),
    )


def remedy_of(record: Any) -> str:
    """The training remedy label of a record (``plain`` when it has none or predates remedies)."""
    from lt_faceparse.longtail.spec import provenance_remedy

    return provenance_remedy(provenance_of(record))


def architecture_of(record: Any) -> tuple[str, str, str]:
    """(model, backbone, resolution): what a remedy row is compared against the plain row of."""
    prov = provenance_of(record)
    return str(prov.get("model")), str(prov.get("backbone")), str(prov.get("resolution"))


def remedy_delta_tables(records: Sequence[Any], labels: Sequence[str], protocol: dict[str, str], *,
                        n_resamples: int = 1000, seed: int = 0) -> list[Table]:
    """One Δ table per plain model of the group that has remedy rows of the same (model, backbone,
    resolution): every remedy against that plain row, per class and for the head and tail means
    (paired bootstrap over images)."""
    taxonomy = _taxonomy_for(protocol, records)
    tail = list(taxonomy.accessory_ids) if taxonomy else []
    head = [i for i in taxonomy.foreground_ids if i not in tail] if taxonomy else []
    class_sets = {"Head": head, "Tail": tail}
    tables = []
    for index, record in enumerate(records):
        if remedy_of(record) != "plain":
            continue
        arch = architecture_of(record)
        others = [i for i, r in enumerate(records) if i != index and architecture_of(r) == arch
                  and remedy_of(r) != "plain"]
        if not others:
            continue
        members = [records[index]] + [records[i] for i in others]
        names = [labels[index]] + [labels[i] for i in others]
        title = f"Long-tail remedies vs {labels[index]} — {protocol_title(protocol)}"
        tables.append(delta_table(members, names, 0, protocol, n_resamples=n_resamples, seed=seed,
                                  class_sets=class_sets, title=title))
    return tables


def build_leaderboard(records: Iterable[Any], *, speed_records: Sequence[dict] = (),
                      reference: str | None = None, n_resamples: int = 1000, seed: int = 0,
                      bins: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
                      mixed: bool = False, remedies: bool = True) -> Leaderboard:
    """Group ``records`` by protocol and build one table per group (+ a Δ table when ``reference``
    names a row of that group). Reported rows come after ours, then rows by mean F1, best first.
    ``bins`` maps a dataset name to its presence bins (``{bin: [class names]}``) for F1@bin columns
    of records that carry no bins of their own. ``mixed`` puts rows of one dataset and split in one
    table even when their merge preset or protocol differ (as the papers print them); those columns
    are then shown and the table notes every difference. ``remedies``: add, per plain model with
    remedy rows, the remedy Δ view (:func:`remedy_delta_tables`)."""
    groups = []
    for protocol, members in group_records(records, mixed=mixed):
        members = sorted(members, key=lambda r: (is_reported(r), -_sort_value(getattr(r, "mean_f1", None))))
        labels = unique_labels(members)
        group_bins = (bins or {}).get(protocol["dataset"])
        table = leaderboard_table(members, protocol, speed_records=speed_records, labels=labels, bins=group_bins)
        notes = _mixed_notes(members)
        differing = [k for k in ("merge", "protocol", "posthoc") if protocol[k] == MIXED]
        if differing:
            values = {k: sorted({protocol_of(r)[k] for r in members}) for k in differing}
            notes.append("Not strictly comparable: rows differ in " + "; ".join(
                f"{k} ({', '.join(v)})" for k, v in values.items()) + " (see those columns).")
        if group_bins:
            notes.append("F1@rare/common/frequent: records without bins of their own use the presence bins of "
                         f"the {protocol['dataset']} class-frequency report: "
                         + "; ".join(f"{b}: {', '.join(m) or 'none'}" for b, m in group_bins.items()) + ".")
        if UNKNOWN in protocol.values():
            missing = [k for k, v in protocol.items() if v == UNKNOWN]
            notes.append(f"Warning: these records do not state {missing}; they are kept apart from every other group.")
        table.notes.extend(notes)
        delta = None
        if reference:
            ref_index = find_reference(members, labels, reference)
            if ref_index is not None and len(members) > 1:
                delta = delta_table(members, labels, ref_index, protocol, n_resamples=n_resamples, seed=seed)
        remedy_deltas = remedy_delta_tables(members, labels, protocol, n_resamples=n_resamples, seed=seed) \
            if remedies else []
        groups.append(LeaderboardGroup(protocol, members, labels, table, notes, delta, remedy_deltas))
    return Leaderboard(groups)


def _sort_value(value: Any) -> float:
    return float(value) if _present(value) else -1.0


# ---- collecting and writing ----------------------------------------------------------------------

def collect_records(results: str | Path | Sequence[str | Path] | None, *, dataset: str | None = None,
                    include_reported: bool = False, split: str | None = None) -> list[Any]:
    """Our records (every ``record.json`` under each results folder) plus, optionally, the
    published rows; filtered to ``dataset`` and/or ``split`` when given."""
    from lt_faceparse.records import load_record

    roots = [] if results is None else ([results] if isinstance(results, (str, Path)) else list(results))
    records = []
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such results folder")
        paths = [root] if root.is_file() else sorted(root.rglob("record.json"))
        records.extend(load_record(p) for p in paths)
    if include_reported:
        from lt_faceparse.reporting.published import load_published

        records.extend(load_published(dataset))
    if dataset:
        records = [r for r in records if str(provenance_of(r).get("dataset", "")).lower() == dataset.lower()]
    if split:
        records = [r for r in records if provenance_of(r).get("split") == split]
    return records


def write_leaderboard(leaderboard: Leaderboard, out_dir: str | Path) -> list[Path]:
    """Per group ``leaderboard-<slug>.{md,csv,tex}`` (+ ``delta-<slug>.*``) and ``leaderboard.md`` with all."""
    from lt_faceparse.atomic import atomic_write_text
    from lt_faceparse.reporting.tables import to_markdown

    out_dir = Path(out_dir)
    written: list[Path] = []
    index = ["# Leaderboard", "",
             f"{len(leaderboard)} protocol group(s); rows of different groups are not comparable and are "
             "never mixed in one table.", ""]
    for group in leaderboard.groups:
        written.extend(write_table(group.table, out_dir, f"leaderboard-{group.slug}").values())
        index.append(to_markdown(group.table))
        if group.delta is not None:
            written.extend(write_table(group.delta, out_dir, f"delta-{group.slug}").values())
            index.append(to_markdown(group.delta))
        for n, table in enumerate(group.remedy_deltas):
            written.extend(write_table(table, out_dir, f"remedies-{group.slug}-{n}").values())
            index.append(to_markdown(table))
    written.append(atomic_write_text(out_dir / "leaderboard.md", "\n".join(index)))
    return written


def compact_table(table: Table) -> Table:
    """The table without its per-class columns (for a terminal; the files keep every column)."""
    keep = [c for c in table.columns if not c.key.startswith(("f1_", "d_")) or c.key == "d_mean"
            or c.key.startswith("d_set_")]
    return Table(keep, table.rows, title=table.title, caption="", notes=[])


def print_leaderboard(leaderboard: Leaderboard, console: Any = None) -> None:
    """Print each group's table (per-class columns left out) and its notes with rich."""
    from rich.console import Console

    from lt_faceparse.reporting.tables import to_rich

    console = console or Console(file=sys.stdout)
    for group in leaderboard.groups:
        console.print(to_rich(compact_table(group.table)))
        for note in group.notes:
            console.print(note)
        if group.delta is not None:
            console.print(to_rich(compact_table(group.delta)))
        for table in group.remedy_deltas:
            console.print(to_rich(compact_table(table)))
    console.print("Per-class columns and the conventions are in the Markdown/CSV/LaTeX files.")


def run_leaderboard(results: str | Path | None, out_dir: str | Path, *, dataset: str | None = None,
                    include_reported: bool = False, reference: str | None = None, split: str | None = None,
                    speed_dir: str | Path | None = None, mixed: bool = False, show: bool = True) -> Leaderboard:
    """Collect, group, write and (optionally) print: what ``lt-faceparse leaderboard`` runs."""
    from lt_faceparse.errors import DataError
    from lt_faceparse.speed.harness import find_speed_records

    records = collect_records(results, dataset=dataset, include_reported=include_reported, split=split)
    if not records:
        raise DataError(results, "no result records found (looked for record.json files"
                        + (" and published rows" if include_reported else "") + ")")
    speed_root = speed_dir if speed_dir is not None else results
    speed_records = find_speed_records(speed_root) if speed_root is not None and Path(speed_root).exists() else []
    leaderboard = build_leaderboard(records, speed_records=speed_records, reference=reference, mixed=mixed)
    write_leaderboard(leaderboard, out_dir)
    if show:
        print_leaderboard(leaderboard)
    return leaderboard
