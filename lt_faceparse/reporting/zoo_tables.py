"""Tables of the released-model zoo: ``zoo list`` and the re-scored leaderboard of ``zoo eval``.

The leaderboard sets each released model's re-scored numbers (one protocol for all, this library's
evaluation) beside the numbers its authors published (``reporting/published_results.json``), with
the difference in percent points: one overview row per model, one table of per-class F1 with all
models side by side, and one per-class table per model against its published row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console

from lt_faceparse.records import ResultRecord
from lt_faceparse.records.accessors import class_ci, mean_f1_ci
from lt_faceparse.reporting.published import published_rows
from lt_faceparse.reporting.tables import Column, Table, file_slug, to_csv, to_markdown, to_rich, write_table
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.zoo import ZooEntry, cache_state

LIST_FORMATS = ("md", "csv", "json")
_DATA_NAMES = {"celebamask-hq": "CelebAMask-HQ", "lapa": "LaPa"}


def zoo_list_rows(entries: Sequence[ZooEntry]) -> list[dict[str, Any]]:
    """One row per entry: name, backbone, resolution, data, published mean F1 (fraction) and source,
    whether it is cached (``converted`` / ``downloaded`` / ``no``), licence terms."""
    return [{"name": e.name, "backbone": e.backbone, "resolution": e.resolution,
             "data": _DATA_NAMES.get(e.dataset, e.dataset),
             "published_mean_f1": None if e.published_mean_f1 is None else e.published_mean_f1 / 100,
             "published_source": e.published_source or "none published", "cached": cache_state(e),
             "licence": e.licence.summary} for e in entries]


def zoo_list_table(entries: Sequence[ZooEntry]) -> Table:
    """The ``zoo list`` table."""
    columns = [Column("name", "name", "str"), Column("backbone", "backbone", "str"),
               Column("resolution", "resolution", "int"), Column("data", "data", "str"),
               Column("published_mean_f1", "published mean F1", "pct"),
               Column("published_source", "published in", "str"), Column("cached", "cached", "str"),
               Column("licence", "licence terms", "str")]
    return Table(columns, zoo_list_rows(entries), title="Released models (lt-faceparse zoo)",
                 notes=["published mean F1: as printed by the source, mean over the foreground classes; cached: "
                        "converted = ready, downloaded = released file present (converted on first use), no = "
                        "fetched on first use. Licence terms: the weights inherit their training data's terms."])


def format_zoo_list(entries: Sequence[ZooEntry], fmt: str) -> str:
    """The ``zoo list`` table as Markdown, CSV or JSON (entries with every field, plus ``cached``)."""
    if fmt == "md":
        return to_markdown(zoo_list_table(entries))
    if fmt == "csv":
        return to_csv(zoo_list_table(entries))
    if fmt == "json":
        return json.dumps([{**e.to_dict(), "cached": cache_state(e)} for e in entries], indent=2) + "\n"
    raise ValueError(f"--format must be one of {LIST_FORMATS}, got {fmt!r}")


def print_zoo_list(entries: Sequence[ZooEntry], fmt: str | None = None) -> None:
    """Print the ``zoo list`` table on stdout: as ``fmt`` (md, csv, json), else a rich table in a
    terminal (model names never cut) and Markdown otherwise."""
    if fmt is None and sys.stdout.isatty():
        table = to_rich(zoo_list_table(entries))
        table.columns[0].no_wrap = True
        Console().print(table)
        return
    sys.stdout.write(format_zoo_list(entries, fmt or "md"))


def published_row_of(entry: ZooEntry) -> dict[str, Any] | None:
    """The published-results row of ``entry`` (percent, as printed), or None."""
    if entry.published_id is None:
        return None
    rows = [r for r in published_rows(include_duplicates=True) if r["id"] == entry.published_id]
    return rows[0] if rows else None


def published_class_f1(entry: ZooEntry) -> dict[str, float]:
    """Class name -> published F1 (fraction) of ``entry`` (empty when only a mean was published)."""
    row = published_row_of(entry)
    if row is None or not row.get("per_class_f1"):
        return {}
    tax = get_taxonomy(row["dataset"])
    return {tax.names[cid]: value / 100 for cid, value in zip(tax.display_order, row["per_class_f1"])}


def _protocol_note(records: Sequence[ResultRecord]) -> str:
    prov = records[0].provenance
    ci = records[0].ci or {}
    boot = (f"95% CI: percentile bootstrap over images ({ci.get('n_resamples')} resamples, seed {ci.get('seed')})"
            if ci else "no bootstrap intervals")
    return (f"Re-scored here: {prov.dataset} {prov.split} split ({records[0].num_images} images), "
            f"merge {prov.merge or 'none (not CelebAMask-HQ)'}, protocol {prov.protocol}, one confusion matrix over the split, "
            f"F1 = 2|G∩P|/(|G|+|P|), mean over the foreground classes; {boot}. Published: as printed by the "
            "source named in the row (the SegFace paper scores at the network input resolution). "
            "Δ = re-scored − published, in percent points.")


def _speed_note(records: Sequence[ResultRecord]) -> str:
    speed = next((r.provenance.speed for r in records if r.provenance.speed), None)
    if not speed:
        return "images/s: not measured."
    return (f"images/s: batch {speed['batch_size']}, {speed['dtype']}, median of {speed['runs']} timed forward "
            f"passes after {speed['warmup']} untimed ones on {speed['device_name']} ({speed['num_threads']} "
            "threads), model only (no data loading, no warp).")


def zoo_leaderboard_table(scored: Sequence[tuple[ZooEntry, ResultRecord]]) -> Table:
    """One row per re-scored model beside its published mean F1."""
    rows = []
    for entry, record in scored:
        published = None if entry.published_mean_f1 is None else entry.published_mean_f1 / 100
        speed = record.provenance.speed or {}
        rows.append({"name": entry.name, "backbone": entry.backbone, "resolution": entry.resolution,
                     "mean_f1": record.mean_f1, "ci": mean_f1_ci(record), "published": published,
                     "delta": None if published is None else record.mean_f1 - published,
                     "source": entry.published_source or "none published",
                     "images_per_s": speed.get("images_per_s"), "licence": entry.licence.summary})
    columns = [Column("name", "model", "str"), Column("backbone", "backbone", "str"),
               Column("resolution", "res", "int"), Column("mean_f1", "mean F1 (re-scored)", "pct", "max"),
               Column("ci", "95% CI", "ci"), Column("published", "mean F1 (published)", "pct"),
               Column("delta", "Δ", "pct_delta"), Column("source", "published in", "str"),
               Column("images_per_s", "images/s", "float1", "max"), Column("licence", "licence terms", "str")]
    records = [r for _, r in scored]
    return Table(columns, rows, title="Released models re-scored under one protocol",
                 notes=[_protocol_note(records), _speed_note(records)])


def zoo_class_table(scored: Sequence[tuple[ZooEntry, ResultRecord]]) -> Table:
    """Per-class F1 of every re-scored model side by side (classes in the paper's column order)."""
    tax = get_taxonomy(scored[0][1].taxonomy)
    keys = [file_slug(e.name) for e, _ in scored]
    rows = [{"class": tax.classes[cid].display, **{k: r.per_class_f1().get(tax.names[cid]) for k, (_, r) in
                                                      zip(keys, scored)}} for cid in tax.display_order]
    rows.append({"class": "mean F1", **{k: r.mean_f1 for k, (_, r) in zip(keys, scored)}})
    columns = [Column("class", "class", "str"), *(Column(k, e.name, "pct", "max") for k, (e, _) in zip(keys, scored))]
    return Table(columns, rows, title="Per-class F1 of the released models, re-scored side by side",
                 notes=[_protocol_note([r for _, r in scored])])


def zoo_model_table(entry: ZooEntry, record: ResultRecord) -> Table:
    """Per-class F1 of one model: re-scored with its interval, published, difference."""
    tax = get_taxonomy(record.taxonomy)
    published = published_class_f1(entry)
    intervals = class_ci(record)
    rows = []
    for cid in tax.display_order:
        name = tax.names[cid]
        ours, theirs = record.per_class_f1().get(name), published.get(name)
        rows.append({"class": tax.classes[cid].display, "f1": ours, "ci": intervals.get(name), "published": theirs,
                     "delta": None if ours is None or theirs is None else ours - theirs})
    mean_pub = None if entry.published_mean_f1 is None else entry.published_mean_f1 / 100
    rows.append({"class": "mean F1", "f1": record.mean_f1, "ci": mean_f1_ci(record), "published": mean_pub,
                 "delta": None if mean_pub is None else record.mean_f1 - mean_pub})
    columns = [Column("class", "class", "str"), Column("f1", "F1 (re-scored)", "pct"), Column("ci", "95% CI", "ci"),
               Column("published", "F1 (published)", "pct"), Column("delta", "Δ", "pct_delta")]
    source = entry.published_source or "no published numbers"
    return Table(columns, rows, title=f"{entry.name}: re-scored beside {source}",
                 notes=[_protocol_note([record])])


def write_zoo_leaderboard(scored: Sequence[tuple[ZooEntry, ResultRecord]], out_dir: str | Path) -> list[Path]:
    """Write the overview, the side-by-side per-class table and one table per model (Markdown, CSV,
    LaTeX each) under ``out_dir``; returns the Markdown files."""
    out_dir = Path(out_dir)
    written = [write_table(zoo_leaderboard_table(scored), out_dir, "zoo_leaderboard")["md"],
               write_table(zoo_class_table(scored), out_dir, "zoo_per_class")["md"]]
    for entry, record in scored:
        written.append(write_table(zoo_model_table(entry, record), out_dir / "models", file_slug(entry.name))["md"])
    return written
