"""Long-tail analysis of result records: who gains and who pays when a method replaces a reference.

A :class:`Comparison` is one reference record and other records ("methods") scored on the same
images. For each, :func:`analyse` computes, from the per-image statistics:

- every record's head mean, tail mean, F1 per presence bin and mean F1, each with a percentile
  bootstrap 95% interval over the test images (:func:`lt_faceparse.metrics.bootstrap.bootstrap_ci`
  with class groups);
- every method's ΔF1 against the reference, per class and for the same group means, with paired
  bootstrap intervals and two-sided p-values (:func:`lt_faceparse.metrics.bootstrap.paired_bootstrap`).

Which records are compared (:func:`find_comparisons`):

- **remedies**: records of one protocol group (dataset, taxonomy, split, merge preset, scoring
  protocol) with the same model, backbone and resolution. The reference is the *plain* record:
  provenance ``longtail`` absent or at its defaults (loss ``plain``, sampler ``uniform``, no
  copy-paste), ``posthoc`` absent or all null, and ``remedy`` absent or ``plain``. Every other record
  of the group is a method (a training remedy or a post-hoc option). A group without exactly one
  plain record is not compared (the report says so).
- **models**: the plain records of the model comparison (one per model and backbone at the most
  common resolution), with SegFace as the reference unless another label is given.

Group definitions: head = foreground classes that are not accessories, tail = accessory classes
(taxonomy ``kind``), bins = presence bins of the training split (``FrequencyTable.bins()``,
foreground members only); a group's score is the mean of its members' defined per-class F1, pixel
counts pooled over the split, exactly as the leaderboard's head/tail columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lt_faceparse.errors import IncomparableError
from lt_faceparse.metrics.bootstrap import bootstrap_ci, paired_bootstrap
from lt_faceparse.metrics.groups import group_mean_f1, head_tail_ids
from lt_faceparse.records import (class_f1, head_tail_means, is_reported, protocol_of, provenance_of,
                                  record_is_plain, record_label, record_remedy_description, record_remedy_label)
from lt_faceparse.reporting import figures as F
from lt_faceparse.reporting.delta import find_reference
from lt_faceparse.reporting.figures import DeltaPanel
from lt_faceparse.reporting.leaderboard import BIN_NAMES
from lt_faceparse.reporting.tables import Column, Table, file_slug, write_table
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

# the bar for a useful remedy: tail mean F1 up by 10 points (p < 0.05), head down by at most 1
TAIL_GAIN, HEAD_LOSS, ALPHA = 0.10, 0.01, 0.05
GROUP_TITLES = {"head": "Head F1", "tail": "Tail F1", "rare": "F1@rare", "common": "F1@common",
                "frequent": "F1@frequent", "mean": "Mean F1"}


def _model_label(record: Any) -> str:
    prov = provenance_of(record)
    name = str(prov.model or record_label(record))
    return name + (f" ({str(prov.backbone).split('/')[-1]})" if prov.backbone else "")


# ---- comparisons ---------------------------------------------------------------------------------------

@dataclass
class Comparison:
    """A reference and the methods compared with it on the same images."""

    kind: str  # "remedies" | "models"
    reference: Any
    methods: list[Any]
    reference_label: str
    labels: list[str]  # one per method
    title: str
    stem: str  # file stem of its table and figure


def find_comparisons(records: Sequence[Any], model_records: Sequence[Any] = (), *,
                     model_reference: str | None = None) -> tuple[list[Comparison], list[str]]:
    """The remedy comparisons in ``records`` and the model comparison of ``model_records`` (see the
    module docstring); also notes on groups that could not be compared."""
    comparisons, notes = [], []
    # post-hoc options form their own leaderboard groups (they change what is scored), but a post-hoc
    # record is compared with the plain record of its setting: group on the protocol without them
    by_setting: dict[tuple, list[Any]] = {}
    protocols: dict[tuple, dict[str, str]] = {}
    for r in records:
        if is_reported(r):
            continue
        protocol = {k: v for k, v in protocol_of(r).items() if k != "posthoc"}
        prov = provenance_of(r)
        key = (*protocol.values(), prov.model, prov.backbone, prov.resolution)
        protocols.setdefault(key, protocol)
        by_setting.setdefault(key, []).append(r)
    for key, group in by_setting.items():
        protocol = protocols[key]
        resolution = provenance_of(group[0]).resolution
        if len(group) < 2:
            continue
        plain = [r for r in group if record_is_plain(r)]
        name = f"{_model_label(group[0])} @{resolution}"
        if len(plain) != 1:
            notes.append(f"long-tail remedies of {name} ({protocol['split']} split): {len(plain)} plain records "
                         f"among {len(group)}, need exactly one as the reference; not compared")
            continue
        methods = [r for r in group if r is not plain[0]]
        comparisons.append(Comparison(
            "remedies", plain[0], methods, "plain", [record_remedy_label(r) for r in methods],
            f"Long-tail remedies of {name} vs plain", f"longtail_remedies_{file_slug(name)}"))
    models = [r for r in model_records if not is_reported(r)]
    if len(models) >= 2:
        labels = [record_label(r) for r in models]
        index = find_reference(models, labels, model_reference) if model_reference else None
        if index is None:
            index = next((i for i, r in enumerate(models) if provenance_of(r).model == "segface"), 0)
        ref = models[index]
        methods = [r for i, r in enumerate(models) if i != index]
        comparisons.append(Comparison(
            "models", ref, methods, _model_label(ref), [_model_label(r) for r in methods],
            f"Models vs {_model_label(ref)}", "longtail_models"))
    return comparisons, notes


# ---- analysis ------------------------------------------------------------------------------------------

def class_groups(taxonomy: Taxonomy, bins: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[int]]:
    """Class ids of head, tail and (given training-split ``bins``) each non-empty presence bin."""
    groups = head_tail_ids(taxonomy)
    fg = set(taxonomy.foreground_ids)
    for name in BIN_NAMES:
        ids = [taxonomy.id_of(n) for n in (bins or {}).get(name, []) if n in taxonomy.names]
        ids = [i for i in ids if i in fg]
        if ids:
            groups[name] = ids
    groups["mean"] = list(taxonomy.foreground_ids)
    return {k: v for k, v in groups.items() if v}


@dataclass
class LongTailAnalysis:
    """The numbers behind one comparison's table, figure and README lines (fractions)."""

    comparison: Comparison
    taxonomy: Taxonomy
    groups: dict[str, list[int]]
    cis: list[Any]  # BootstrapCI (with groups) or None: reference first, then each method
    tests: list[Any]  # PairedBootstrap (method vs reference, with groups) or None, one per method
    n_resamples: int
    val: list[dict[str, float] | None] = field(default_factory=list)  # reference, then methods: val head/tail
    bins_note: str = ""

    @property
    def records(self) -> list[Any]:
        return [self.comparison.reference, *self.comparison.methods]

    @property
    def labels(self) -> list[str]:
        return [self.comparison.reference_label, *self.comparison.labels]


def analyse(comparison: Comparison, *, bins: Mapping[str, Sequence[str]] | None = None, n_resamples: int = 1000,
            seed: int = 0, val_records: Mapping[str, Any] | None = None, bins_note: str = "") -> LongTailAnalysis:
    """Group intervals of every record and paired tests of every method against the reference.
    ``val_records``: run name -> the same setting's validation record (for choices made on val)."""
    taxonomy = get_taxonomy(comparison.reference.taxonomy)
    groups = class_groups(taxonomy, bins)
    cis = []
    for r in [comparison.reference, *comparison.methods]:
        stats = r.per_image
        cis.append(None if stats is None else bootstrap_ci(stats, taxonomy, n_resamples=n_resamples, seed=seed,
                                                           groups=groups))
    tests = []
    for r in comparison.methods:
        try:
            tests.append(paired_bootstrap(comparison.reference, r, taxonomy, n_resamples=n_resamples, seed=seed,
                                          groups=groups))
        except IncomparableError:
            tests.append(None)
    val = []
    for r in [comparison.reference, *comparison.methods]:
        v = (val_records or {}).get(provenance_of(r).run)
        if v is None:
            val.append(None)
        else:
            head, tail = head_tail_means(v, taxonomy)
            val.append({"head": head, "tail": tail, "mean": v.mean_f1, "num_images": v.num_images})
    return LongTailAnalysis(comparison, taxonomy, groups, cis, tests, n_resamples, val, bins_note)


def group_value(analysis: LongTailAnalysis, index: int, group: str) -> tuple[float, float | None, float | None]:
    """(point, lower, upper) of a group mean of record ``index`` (0 = reference); the point comes from
    the record's per-class F1 when it has no per-image stats."""
    ci = analysis.cis[index]
    if ci is not None and group in ci.groups:
        return ci.groups[group]
    f1 = class_f1(analysis.records[index])
    values = np.array([f1.get(i, float("nan")) for i in range(analysis.taxonomy.num_classes)])
    return float(group_mean_f1(values, analysis.groups[group])), None, None


# ---- tables --------------------------------------------------------------------------------------------

def _caption(analysis: LongTailAnalysis) -> str:
    ref = analysis.comparison.reference
    prov = provenance_of(ref)
    n = ref.num_images
    return (f"Data: {prov.dataset}, {prov.split} split ({n} images), merge {prov.merge}, "
            f"'{prov.protocol}' scoring at {prov.resolution} px. Head = non-accessory foreground "
            "classes, Tail = accessory classes, F1@bin = presence bins of the training split"
            + (f" ({analysis.bins_note})" if analysis.bins_note else "")
            + "".join(f"; {g}: " + ", ".join(analysis.taxonomy[i].display for i in analysis.groups[g])
                      for g in BIN_NAMES if g in analysis.groups)
            + "; each group score = mean of its classes' F1 (pixel counts pooled over the split); Mean F1 over "
            f"all foreground classes. 95% CI = percentile bootstrap over the {n} images ({analysis.n_resamples} "
            "resamples). Percent.")


def longtail_table(analysis: LongTailAnalysis) -> Table:
    """Head, tail, F1 per presence bin and mean F1 of every record, each with its 95% CI."""
    columns = [Column("method", "Method", "str")]
    if analysis.comparison.kind == "remedies":
        columns.append(Column("settings", "Remedy (parameters)", "str"))
    for g in analysis.groups:
        columns += [Column(g, GROUP_TITLES.get(g, g), "pct", "max"), Column(f"{g}_ci", "95% CI", "ci")]
    rows = []
    for i, (label, record) in enumerate(zip(analysis.labels, analysis.records)):
        row: dict[str, Any] = {"method": label + (" (reference)" if i == 0 else ""),
                               "settings": record_remedy_description(record)}
        for g in analysis.groups:
            value, lo, hi = group_value(analysis, i, g)
            row[g] = value
            row[f"{g}_ci"] = None if lo is None else (lo, hi)
        rows.append(row)
    return Table(columns, rows, title=f"{analysis.comparison.title}: head, tail and presence bins",
                 caption=_caption(analysis))


def _delta_text(delta: float, lower: float, upper: float) -> str:
    if delta != delta:
        return "-"
    return f"{100 * delta:+.2f}" + ("*" if lower > 0 or upper < 0 else "")


def longtail_delta_table(analysis: LongTailAnalysis) -> Table:
    """Every method minus the reference: Δ of each group mean with its paired 95% CI and p-value."""
    columns = [Column("method", "Method", "str")]
    for g in analysis.groups:
        title = GROUP_TITLES.get(g, g)
        columns += [Column(f"d_{g}", f"Δ {title}", "rstr"), Column(f"ci_{g}", "95% CI", "ci"),
                    Column(f"p_{g}", "p", "float3")]
    rows = []
    for label, test in zip(analysis.comparison.labels, analysis.tests):
        row: dict[str, Any] = {"method": label}
        for g in analysis.groups:
            d = test.groups[g] if test is not None else None
            row[f"d_{g}"] = "-" if d is None else _delta_text(d.delta, d.lower, d.upper)
            row[f"ci_{g}"] = None if d is None else (d.lower, d.upper)
            row[f"p_{g}"] = None if d is None else d.p_value
        rows.append(row)
    ref = analysis.comparison.reference_label
    return Table(columns, rows, title=f"{analysis.comparison.title}: Δ vs {ref}",
                 caption=(f"Δ = score(method) − score({ref}) in percent points on the same images; 95% CI and p "
                          f"from a paired bootstrap over images ({analysis.n_resamples} resamples; both scored on "
                          "each resample); p = two-sided bootstrap p-value of Δ = 0, not adjusted for the number of "
                          "methods; * = the interval excludes 0. " + _caption(analysis)))


# ---- figure --------------------------------------------------------------------------------------------

def delta_panels(analysis: LongTailAnalysis) -> list[Any]:
    """One :class:`lt_faceparse.reporting.figures.DeltaPanel` per method with a paired test."""
    panels = []
    for label, test in zip(analysis.comparison.labels, analysis.tests):
        if test is None:
            continue
        ids = analysis.taxonomy.foreground_ids
        summary = []
        for g in ("tail", "head"):
            if g in test.groups:
                d = test.groups[g]
                summary.append(f"Δ{g} {100 * d.delta:+.1f} (p={d.p_value:.3f})")
        panels.append(DeltaPanel(
            title=f"{label} − {analysis.comparison.reference_label}\n" + ", ".join(summary),
            delta={i: float(test.delta[i]) for i in ids},
            intervals={i: (float(test.lower[i]), float(test.upper[i])) for i in ids}))
    return panels


# ---- report wiring -------------------------------------------------------------------------------------

def write_longtail(comparisons: Sequence[Comparison], *, frequency: Any, tables_dir: Any, figures_dir: Any,
                   add: Callable[[str, Any], None], n_resamples: int = 1000,
                   val_records: Mapping[str, Any] | None = None, caption_extra: str = "") -> list[LongTailAnalysis]:
    """Analyse each comparison and write its tables (``<stem>.*``, ``<stem>_delta.*``) and, with a
    training-split ``frequency`` table, its ΔF1-vs-presence figure; ``add(name, paths)`` registers files."""
    analyses = []
    for comparison in comparisons:
        taxonomy = get_taxonomy(comparison.reference.taxonomy)
        same_taxonomy = frequency is not None and frequency.taxonomy.name == taxonomy.name
        bins = frequency.bins() if same_taxonomy else None
        note = ""
        if same_taxonomy:
            s = frequency.summary
            note = (f"{s.get('dataset')} {s.get('split')} split, {s.get('num_images')} images, thresholds "
                    f"{s.get('thresholds') or 'default'}")
        analysis = analyse(comparison, bins=bins, n_resamples=n_resamples, val_records=val_records, bins_note=note)
        analyses.append(analysis)
        add("longtail_table", write_table(longtail_table(analysis), tables_dir, comparison.stem))
        add("longtail_delta", write_table(longtail_delta_table(analysis), tables_dir, f"{comparison.stem}_delta"))
        panels = delta_panels(analysis)
        if same_taxonomy and panels:
            presence = {taxonomy.id_of(n): float(p) for n, p in frequency.presence().items() if n in taxonomy.names}
            fig = F.delta_vs_presence_figure(presence, panels, taxonomy)
            add("longtail_figure", F.save_figure(fig, figures_dir, f"{comparison.stem}_delta_vs_presence", (
                f"{comparison.title}: per-class ΔF1 (method − {comparison.reference_label}, percent points) against "
                "the class's presence probability in the training split (log axis), one panel per method. Error "
                "bars = paired-bootstrap 95% intervals over the test images; filled markers = interval excludes 0 "
                "(a real gain above 0, a real loss below); red names = tail (accessory) classes. Panel titles: "
                "Δ of the tail and head mean F1 with paired-bootstrap p-values. " + _caption(analysis)
                + (" " + caption_extra if caption_extra else ""))))
    return analyses
