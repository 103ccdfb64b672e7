"""The Δ views of a leaderboard group: every row against a reference row (paired bootstrap on the
same images, else the plain difference), and each long-tail remedy against its plain model."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from lt_faceparse.errors import IncomparableError
from lt_faceparse.metrics.bootstrap import paired_bootstrap, paired_bootstrap_subsets, per_image_of
from lt_faceparse.metrics.groups import group_mean_f1
from lt_faceparse.records import architecture_of, class_f1, remedy_of
from lt_faceparse.reporting.record_groups import group_taxonomy, has_value, protocol_title
from lt_faceparse.reporting.tables import Column, Table


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
    taxonomy = group_taxonomy(protocol, records)
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
            if test is not None and has_value(test.lower[k]) and (test.lower[k] > 0 or test.upper[k] < 0):
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
            row["d_mean"] = "-" if not (has_value(mean_a) and has_value(mean_b)) else f"{100 * (mean_b - mean_a):+.2f}"
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


def remedy_delta_tables(records: Sequence[Any], labels: Sequence[str], protocol: dict[str, str], *,
                        n_resamples: int = 1000, seed: int = 0) -> list[Table]:
    """One Δ table per plain model of the group that has remedy rows of the same (model, backbone,
    resolution): every remedy against that plain row, per class and for the head and tail means
    (paired bootstrap over images)."""
    taxonomy = group_taxonomy(protocol, records)
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
