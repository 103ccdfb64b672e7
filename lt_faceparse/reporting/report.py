"""Paper-style report from a results folder: leaderboard, Figure 1, F1 vs presence, confusion
heatmaps, Tables 2a/2b, FPS vs resolution, qualitative grid and token-attention figures.

Inputs are what the other layers write: result records (``record.json``), speed records
(``speed-*.json``), sweep rows (``sweep.json``), a class-frequency report folder
(``class_frequencies.csv`` + ``summary.json``) and, for the figures that need predictions, the weight
files named in the records' provenance plus the dataset they were scored on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from lt_faceparse.analysis.frequency import FrequencyTable
from lt_faceparse.errors import DataError
from lt_faceparse.reporting import figures as F
from lt_faceparse.reporting.examples import example_figures
from lt_faceparse.reporting.leaderboard import build_leaderboard, collect_records, group_records, write_leaderboard
from lt_faceparse.reporting.longtail import find_comparisons, write_longtail
from lt_faceparse.reporting.outputs import ReportOutputs, data_caption, models_caption
from lt_faceparse.reporting.published import load_published
from lt_faceparse.records import (NO_POSTHOC, class_ci, class_f1, head_tail_means, is_reported, mean_f1_ci,
                                  merge_text, provenance_of, record_is_plain, record_label, taxonomy_of_record)
from lt_faceparse.reporting.sweep_rows import find_sweep_rows
from lt_faceparse.reporting.sweep_tables import write_sweep_outputs
from lt_faceparse.reporting.tables import file_slug
from lt_faceparse.speed.harness import find_speed_records
from lt_faceparse.taxonomy import Taxonomy


# ---- presence / frequency ---------------------------------------------------------------------------

def presence_by_id(frequency: Any, taxonomy: Taxonomy) -> dict[int, float]:
    """Class id -> presence probability from a :class:`FrequencyTable`."""
    presence = frequency.presence()
    return {taxonomy.id_of(name): float(p) for name, p in presence.items() if name in taxonomy.names}


def frequency_caption(frequency: Any) -> str:
    s = frequency.summary
    return (f"Presence probability = share of the {s.get('num_images')} images of the {s.get('dataset')} "
            f"{s.get('split')} split (merge {merge_text(s.get('merge'), s.get('data_format') or s.get('dataset'))}) containing the class.")


def series_of(records: Sequence[Any], taxonomy: Taxonomy) -> list[F.Series]:
    out = []
    for r in records:
        by_name = class_ci(r)
        intervals = {taxonomy.id_of(n): v for n, v in by_name.items() if n in taxonomy.names}
        out.append(F.Series(record_label(r), class_f1(r), intervals or None))
    return out


# ---- the report ---------------------------------------------------------------------------------------

def run_report(results: str | Path, out_dir: str | Path, *, freq: str | Path | None = None,
               speed: str | Path | None = None, include_reported: bool = True, reference: str | None = None,
               split: str | None = "test", data_root: str | None = None, examples: int = 4,
               device: str = "cpu", n_resamples: int = 1000) -> ReportOutputs:
    """Write every table and figure the inputs allow under ``out_dir`` (``tables/``, ``figures/``)."""
    out_dir = Path(out_dir)
    tables_dir, figures_dir = out_dir / "tables", out_dir / "figures"
    outputs = ReportOutputs(out_dir)
    records = collect_records(results, split=split)
    if not records:
        raise DataError(results, f"no result records of split {split!r} found (looked for record.json files)")
    outputs.records = records
    outputs.speed_records = find_speed_records(speed if speed is not None else results)
    # Tables 2a/2b and the resolution curves compare backbones and resolutions of plain training; rows of
    # long-tail remedy settings belong to the long-tail analysis (from their records)
    outputs.sweep_rows = [r for r in find_sweep_rows(results) if r.get("remedy", "plain") == "plain"]
    frequency = FrequencyTable.read(freq) if freq is not None else None
    outputs.frequency = frequency

    if reference is None:
        reference = next((record_label(r) for r in records
                          if provenance_of(r).model == "segface" and record_is_plain(r)), None)
    _leaderboard_outputs(outputs, frequency, include_reported=include_reported, reference=reference,
                         n_resamples=n_resamples)

    # per protocol group of our plainly scored records: Figure 1, F1 vs presence, confusion heatmaps, examples
    # (post-hoc variants of a model are compared with it in the long-tail analysis below, not drawn again);
    # with several such groups (datasets, splits, protocols), every file stem ends in the group's name
    figure_groups = [(protocol, members) for protocol, members in group_records(records)
                     if protocol.get("posthoc", NO_POSTHOC) == NO_POSTHOC]
    for protocol, members in figure_groups:
        suffix = "" if len(figure_groups) == 1 else "_" + file_slug("_".join(
            protocol[k] for k in ("dataset", "split", "merge", "protocol")))
        taxonomy = taxonomy_of_record(members[0])
        main = main_records(members)
        caption = data_caption(main) + " " + models_caption(main)
        if frequency is not None and frequency.taxonomy.name == taxonomy.name:
            presence = presence_by_id(frequency, taxonomy)
            series = series_of(main, taxonomy)
            outputs.add("figure1", F.save_figure(
                F.frequency_f1_figure(presence, series, taxonomy), figures_dir, f"fig1_presence_vs_f1{suffix}",
                "SegFace Figure 1, done properly: bars = presence probability of each foreground class (training "
                "split, sorted), lines = each model's per-class test F1 (pooled pixel counts). "
                + frequency_caption(frequency) + " " + caption))
            outputs.add("f1_vs_presence", F.save_figure(
                F.f1_vs_presence_figure(presence, series, taxonomy), figures_dir, f"f1_vs_log_presence{suffix}",
                "Per-class test F1 against presence probability (log axis); error bars = 95% percentile "
                "bootstrap intervals over test images (classes absent from a resample skipped). "
                + frequency_caption(frequency) + " " + caption))
        elif frequency is None:
            outputs.skipped.append("Figure 1 and F1 vs presence: no --freq folder given")
        for r in main:
            cm = r.confusion_matrix()
            if cm is None:
                continue
            stem = f"confusion_{file_slug(record_label(r))}{suffix}"
            outputs.tail_destinations[record_label(r)] = F.tail_destinations(cm, taxonomy)
            outputs.add("confusion", F.save_figure(
                F.confusion_figure(cm, taxonomy), figures_dir, stem,
                f"Row-normalised confusion matrix of {record_label(r)} (rows = ground truth, columns = prediction, "
                f"% of the row's pixels; background last). "
                + ("Framed red rows = tail (accessory) classes, with every cell >= 1% printed: where tail pixels "
                   "go. " if taxonomy.accessory_ids else "")
                + data_caption([r])))
        example_figures(main, figures_dir, outputs, data_root=data_root, count=examples, device=device,
                        suffix=suffix)
        longtail_report((), main, outputs, frequency=frequency, results=results, split=split,
                        reference=reference, n_resamples=n_resamples)
    # remedies against plain across groups: a post-hoc option has its own leaderboard group but is
    # compared with the plain record of its setting
    longtail_report(records, (), outputs, frequency=frequency, results=results, split=split,
                    reference=reference, n_resamples=n_resamples)

    write_sweep_outputs(outputs, tables_dir, figures_dir)
    return outputs


def _leaderboard_outputs(outputs: ReportOutputs, frequency: Any, *, include_reported: bool, reference: str | None,
                         n_resamples: int) -> None:
    """The leaderboard of ``outputs.records``: our groups, plus the published rows as their own groups."""
    published = load_published() if include_reported else []
    bins = None
    if frequency is not None:
        bins = {str(frequency.summary.get("dataset")): frequency.bins()}
    board = build_leaderboard([*outputs.records, *published], speed_records=outputs.speed_records,
                              reference=reference, n_resamples=n_resamples, bins=bins)
    outputs.leaderboard = board
    outputs.add("leaderboard", write_leaderboard(board, outputs.out_dir / "tables"))


def longtail_report(members: Sequence[Any], main: Sequence[Any], outputs: ReportOutputs, *, frequency: Any,
                    results: str | Path, split: str | None, reference: str | None, n_resamples: int) -> None:
    """Long-tail tables and ΔF1-vs-presence figures: the remedies in ``members`` against plain, and the
    models of ``main`` (one protocol group) against ``reference`` (see :mod:`lt_faceparse.reporting.longtail`)."""
    comparisons, notes = find_comparisons(members, main, model_reference=reference)
    outputs.skipped.extend(notes)
    if not comparisons:
        return
    val_records = {}
    if split == "test":  # the validation records saved next to the test records (choices are made on val)
        val_records = {provenance_of(r).run: r for r in collect_records(results, split="val")
                       if provenance_of(r).run}
    if frequency is None:
        outputs.skipped.append("long-tail ΔF1 vs presence figure and presence bins: no --freq folder given")
    outputs.longtail.extend(write_longtail(
        comparisons, frequency=frequency, tables_dir=outputs.out_dir / "tables", figures_dir=outputs.out_dir / "figures",
        add=outputs.add, n_resamples=n_resamples, val_records=val_records,
        caption_extra=models_caption([c.reference for c in comparisons])))


def main_records(records: Sequence[Any]) -> list[Any]:
    """One plain record (no long-tail remedy, no post-hoc option) per (model, backbone): the one at
    the most common resolution, SegFace first."""
    records = [r for r in records if record_is_plain(r)] or list(records)
    resolutions = [provenance_of(r).resolution for r in records]
    common = max(set(resolutions), key=lambda v: (resolutions.count(v), -(v or 0)))
    chosen: dict[tuple, Any] = {}
    for r in records:
        prov = provenance_of(r)
        key = (prov.model, prov.backbone)
        if prov.resolution == common and key not in chosen and not is_reported(r):
            chosen[key] = r
    return sorted(chosen.values(), key=lambda r: (provenance_of(r).model != "segface", record_label(r)))


def _setting(record: Any) -> tuple:
    prov = provenance_of(record)
    return prov.model, prov.backbone, prov.resolution, prov.dataset, prov.split, prov.protocol


def repeated_settings(records: Sequence[Any], main: Sequence[Any]) -> list[list[Any]]:
    """For each record of ``main`` (:func:`main_records`) that shares its setting (model, backbone, resolution,
    dataset, split, protocol) with other plain records of ours (repeated runs, other seeds): that record
    first, then the others."""
    ours = [r for r in records if record_is_plain(r) and not is_reported(r)]
    out = []
    for r in main:
        others = [x for x in ours if x is not r and _setting(x) == _setting(r)]
        if others:
            out.append([r, *others])
    return out


def headline_numbers(outputs: ReportOutputs) -> dict[str, Any]:
    """The numbers the README quotes, computed from the records (fractions)."""
    main = main_records(outputs.records)
    out: dict[str, Any] = {"models": []}
    for r in main:
        taxonomy = taxonomy_of_record(r)
        head, tail = head_tail_means(r, taxonomy)
        f1 = class_f1(r)
        out["models"].append({
            "label": record_label(r), "model": provenance_of(r).model, "mean_f1": r.mean_f1,
            "ci": mean_f1_ci(r), "mean_iou_with_bg": r.mean_iou_with_bg, "head": head, "tail": tail,
            "tail_classes": {taxonomy[i].display: f1.get(i) for i in taxonomy.accessory_ids},
            "f1_by_bin": r.f1_by_bin, "num_params": provenance_of(r).num_params,
        })
    return out
