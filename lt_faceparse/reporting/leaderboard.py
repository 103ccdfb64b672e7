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

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from rich.console import Console

from lt_faceparse.analysis.bins import BIN_NAMES
from lt_faceparse.atomic import atomic_write_text
from lt_faceparse.errors import DataError
from lt_faceparse.records import (NO_POSTHOC, PROTOCOL_KEYS, UNKNOWN, bin_f1, class_f1, head_tail_means, is_reported,
                                  load_record, mean_f1_ci, protocol_of, provenance_of, record_label)
from lt_faceparse.reporting.delta import delta_table, find_reference, remedy_delta_tables
from lt_faceparse.reporting.published import load_published
from lt_faceparse.reporting.record_groups import MIXED, group_taxonomy, has_value, protocol_title
from lt_faceparse.reporting.tables import Column, Table, file_slug, to_markdown, to_rich, write_table
from lt_faceparse.speed.harness import find_speed_records, select_speed

CONVENTION_NOTE = (
    "F1 per class from pixel counts pooled over the split; mean F1 over foreground classes; "
    "mIoU shown without and with background; Head = non-accessory foreground classes, "
    "Tail = accessory classes; F1@rare/common/frequent = mean F1 of the classes in each presence bin; "
    "95% CI = percentile bootstrap over images; all values in percent. FPS = images/s at batch 1 "
    "(our measurement: device and dtype in the speed record; reported rows: the paper's hardware)."
)


def _speed_for(record: Any, speed_records: Sequence[dict]) -> dict | None:
    prov = provenance_of(record)
    if not speed_records or is_reported(record):
        return None
    return select_speed(speed_records, model=prov.model, backbone=prov.backbone,
                        resolution=prov.resolution)


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


def _origin_candidates(record: Any) -> list[str]:
    """Ways to tell a record from others of the same label, most readable first: its run folder (from
    the weights it was scored from), its record's folder, the run named in its provenance, its source."""
    prov = provenance_of(record)
    out = []
    if prov.weights:
        out.append(Path(str(prov.weights)).parent.name)
    path = getattr(record, "path", None)
    if path is not None:
        out.append(Path(path).parent.name if Path(path).name == "record.json" else Path(path).stem)
    out.extend(str(v) for v in (prov.run, prov.source) if v)
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
        values = {str(getattr(provenance_of(r), field_name) or UNKNOWN) for r in records}
        if len(values) > 1:
            notes.append(f"Note: rows differ in {what} ({', '.join(sorted(values))}); see the "
                         f"'{'Ckpt' if field_name == 'checkpoint_rule' else 'Pretrain'}' column.")
    return notes


def leaderboard_table(records: Sequence[Any], protocol: dict[str, str], *,
                      speed_records: Sequence[dict] = (), labels: Sequence[str] | None = None,
                      bins: Mapping[str, Sequence[str]] | None = None) -> Table:
    """The Table-1-style table of one protocol group (``bins``: presence bins of this group's
    dataset, for records that do not carry their own)."""
    taxonomy = group_taxonomy(protocol, records)
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
            "resolution": str(prov.resolution or "-"),
            "pretraining": str(prov.pretraining or "-"),
            "checkpoint_rule": str(prov.checkpoint_rule or "-"),
            "merge": protocol_of(record)["merge"],
            "protocol": protocol_of(record)["protocol"],
            "posthoc": protocol_of(record)["posthoc"],
            "mean_f1": getattr(record, "mean_f1", None),
            "ci": mean_f1_ci(record),
            "miou_nobg": getattr(record, "mean_iou_without_bg", None),
            "miou_bg": getattr(record, "mean_iou_with_bg", None),
            "head": head,
            "tail": tail,
            "params": (speed or {}).get("params") or prov.num_params,
            "fps": (speed or {}).get("fps") or prov.fps,
        }
        row.update({f"f1_{i}": f1.get(i) for i in class_ids})
        row.update({f"bin_{b}": v for b, v in bin_f1(record, bins).items()})
        rows.append(row)

    # drop columns nobody has a value for (e.g. bins on reported-only tables, FPS without timings)
    optional = {"ci", "miou_bg", "miou_nobg", "tail", "params", "fps", *(f"bin_{b}" for b in BIN_NAMES)}
    columns = [c for c in columns if c.key not in optional or any(has_value(r.get(c.key)) for r in rows)]
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
    return float(value) if has_value(value) else -1.0


# ---- collecting and writing ----------------------------------------------------------------------

def collect_records(results: str | Path | Sequence[str | Path] | None, *, dataset: str | None = None,
                    include_reported: bool = False, split: str | None = None) -> list[Any]:
    """Our records (every ``record.json`` under each results folder) plus, optionally, the
    published rows; filtered to ``dataset`` and/or ``split`` when given."""
    roots = [] if results is None else ([results] if isinstance(results, (str, Path)) else list(results))
    records = []
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such results folder")
        paths = [root] if root.is_file() else sorted(root.rglob("record.json"))
        records.extend(load_record(p) for p in paths)
    if include_reported:
        records.extend(load_published(dataset))
    if dataset:
        records = [r for r in records if str(provenance_of(r).dataset or "").lower() == dataset.lower()]
    if split:
        records = [r for r in records if provenance_of(r).split == split]
    return records


def write_leaderboard(leaderboard: Leaderboard, out_dir: str | Path) -> list[Path]:
    """Per group ``leaderboard-<slug>.{md,csv,tex}`` (+ ``delta-<slug>.*``) and ``leaderboard.md`` with all."""
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
