"""Paired comparison of two result records: ``lt-faceparse compare RECORD_A RECORD_B``.

Both records must score the same images under the same protocol (dataset, taxonomy, split, merge
preset, scoring protocol); the test is :func:`lt_faceparse.metrics.bootstrap.paired_bootstrap`
(the one the leaderboard's Δ view uses): both models are scored on the same bootstrap resamples of
the images, and per class ΔF1 = F1(B) − F1(A) gets a percentile interval and a two-sided p-value.
Because one table tests every foreground class, it also gives Holm-adjusted p-values (family =
the foreground classes with a defined Δ), which control the chance of any false "significant".
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from lt_faceparse.atomic import atomic_write_json
from lt_faceparse.errors import IncomparableError
from lt_faceparse.metrics.bootstrap import PairedBootstrap, paired_bootstrap, per_image_of
from lt_faceparse.metrics.groups import holm as holm_adjusted
from lt_faceparse.records import check_comparable, load_record, record_label, record_merge_text, record_taxonomy
from lt_faceparse.reporting.tables import Column, Table, to_rich, write_table

COMPARE_KEYS = ("dataset", "taxonomy", "split", "merge", "protocol")
FEW_IMAGES = 30  # below this many images the bootstrap is flagged as descriptive only


@dataclass
class Comparison:
    """The paired test of record B against record A and its table (one row per foreground class in
    the taxonomy's display order, then the mean F1)."""

    record_a: Any
    record_b: Any
    test: PairedBootstrap
    table: Table

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: which records, the test (method, settings, per-class rows) and the table rows."""
        return {
            "a": {"label": record_label(self.record_a), "path": _path(self.record_a)},
            "b": {"label": record_label(self.record_b), "path": _path(self.record_b)},
            "test": _json_ready(self.test.to_dict()),
            "rows": _json_ready(self.table.rows),
        }


def _json_ready(value: Any) -> Any:
    """NaN -> None, tuples -> lists, numpy scalars -> Python numbers."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _path(record: Any) -> str | None:
    path = getattr(record, "path", None)
    return None if path is None else str(path)


def check_pairable(record_a: Any, record_b: Any) -> None:
    """Raise :class:`IncomparableError` (saying why, naming both files) unless both records hold
    per-image statistics and agree on dataset, taxonomy, split, merge preset and protocol."""
    for which, record in (("A", record_a), ("B", record_b)):
        if per_image_of(record) is None:
            raise IncomparableError(f"record {which} ({record_label(record)} [{_path(record)}]) has no per-image "
                                    "statistics (a published row, or a record without per_image.npz); a paired "
                                    "test needs them")
    check_comparable([record_a, record_b], keys=COMPARE_KEYS,
                     hint="a paired test needs both scored on the same images in the same way; score them alike")


def compare_records(record_a: Any, record_b: Any, *, n_resamples: int = 1000, confidence: float = 0.95,
                    seed: int = 0) -> Comparison:
    """Paired bootstrap test of ``record_b`` against ``record_a`` (ResultRecords scored on the same
    images); raises :class:`IncomparableError` for records that cannot be compared."""
    check_pairable(record_a, record_b)
    taxonomy = record_taxonomy(record_a)
    if record_taxonomy(record_b).names != taxonomy.names:
        raise IncomparableError(f"the records' class lists differ: {taxonomy.names} vs {record_b.class_names}")
    test = paired_bootstrap(record_a, record_b, taxonomy, n_resamples=n_resamples, confidence=confidence, seed=seed)
    ids = taxonomy.display_order
    holm = np.full(taxonomy.num_classes, np.nan)
    holm[ids] = holm_adjusted(test.p_value[ids])
    f1_a, f1_b = _f1(record_a), _f1(record_b)
    rows = []
    for i in ids:
        rows.append({"class": taxonomy[i].display, "f1_a": f1_a[i], "f1_b": f1_b[i], "delta": test.delta[i],
                     "ci": (test.lower[i], test.upper[i]), "p": test.p_value[i], "p_holm": holm[i],
                     "verdict": _verdict(test.lower[i], test.upper[i], holm[i], confidence)})
    rows.append({"class": "Mean F1", "f1_a": record_a.mean_f1, "f1_b": record_b.mean_f1, "delta": test.mean_delta,
                 "ci": (test.mean_lower, test.mean_upper), "p": test.mean_p_value, "p_holm": float("nan"),
                 "verdict": _verdict(test.mean_lower, test.mean_upper, float("nan"), confidence)})
    label_a, label_b = record_label(record_a), record_label(record_b)
    if label_a == label_b:
        label_a, label_b = f"{label_a} [A]", f"{label_b} [B]"
    pct = round(100 * confidence)
    columns = [
        Column("class", "Class", "str"),
        Column("f1_a", "F1 A", "pct"),
        Column("f1_b", "F1 B", "pct"),
        Column("delta", "Δ F1 (B − A)", "pct_delta"),
        Column("ci", f"{pct}% CI (Δ)", "ci"),
        Column("p", "p", "float3"),
        Column("p_holm", "p (Holm)", "float3"),
        Column("verdict", "Verdict", "str"),
    ]
    prov = record_a.provenance
    title = (f"B = {label_b} vs A = {label_a}: {prov.dataset} / {prov.split} split ({test.num_images} images) / "
             f"taxonomy {record_a.taxonomy} / merge {record_merge_text(record_a)} / {prov.protocol} scoring")
    caption = (f"Per-class F1 from pixel counts pooled over the split, in percent; Δ = F1(B) − F1(A) in percent "
               f"points. Paired percentile bootstrap over the {test.num_images} images ({test.n_resamples} resamples, "
               f"seed {test.seed}): both models scored on the same resamples; resamples in which a class is absent "
               f"from both ground truth and predictions are skipped for it. p = two-sided bootstrap p-value of Δ = 0; "
               f"p (Holm) adjusts the per-class p-values for testing {int(np.sum(~np.isnan(holm)))} classes. Verdict: "
               f"'B better'/'A better' where the {pct}% interval excludes 0 (per-class rows: and p (Holm) < "
               f"{1 - confidence:.2f}), else 'none shown'. A: {label_a} ({_path(record_a)}); B: {label_b} "
               f"({_path(record_b)}).")
    notes = []
    if test.num_images < FEW_IMAGES:
        notes.append(f"Caution: only {test.num_images} images. Bootstrap intervals and p-values from so few images "
                     "understate the uncertainty (few distinct resamples); read them as descriptive.")
    if prov.resolution != record_b.provenance.resolution:
        notes.append(f"Note: the models ran at different resolutions ({prov.resolution} vs "
                     f"{record_b.provenance.resolution}).")
    return Comparison(record_a, record_b, test, Table(columns, rows, title=title, caption=caption, notes=notes))


def _f1(record: Any) -> list[float]:
    return [float("nan") if row["f1"] is None else float(row["f1"]) for row in record.per_class]


def _verdict(lower: float, upper: float, p_holm: float, confidence: float) -> str:
    if math.isnan(lower) or math.isnan(upper):
        return "undefined"
    family_ok = math.isnan(p_holm) or p_holm < 1 - confidence
    if lower > 0 and family_ok:
        return "B better"
    if upper < 0 and family_ok:
        return "A better"
    return "none shown"


def run_compare(path_a: str | Path, path_b: str | Path, out_dir: str | Path | None = None, *,
                n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0, stem: str = "compare",
                show: bool = True) -> Comparison:
    """Load two records, test them, print the table (rich) and, with ``out_dir``, write
    ``<stem>.md/.csv/.tex`` and ``<stem>.json``: what ``lt-faceparse compare`` runs."""
    comparison = compare_records(load_record(path_a), load_record(path_b), n_resamples=n_resamples,
                                 confidence=confidence, seed=seed)
    if out_dir is not None:
        write_table(comparison.table, out_dir, stem)
        atomic_write_json(Path(out_dir) / f"{stem}.json", comparison.to_dict())
    if show:
        console = Console(file=sys.stdout)
        console.print(to_rich(comparison.table))
        for note in comparison.table.notes:
            console.print(note)
    return comparison
