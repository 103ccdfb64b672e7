"""``README.md`` of a report folder: what each file is, and the headline findings in numbers.

Every sentence with a number is generated from the records, speed records and sweep rows the
report read; comparisons are stated in whichever direction the numbers go (including where
SegFace does not win), with the paired-bootstrap interval saying whether a difference is
distinguishable from noise on this test split.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

from lt_faceparse.atomic import atomic_write_text
from lt_faceparse.errors import IncomparableError
from lt_faceparse.metrics.bootstrap import paired_bootstrap
from lt_faceparse.metrics.groups import holm
from lt_faceparse.reporting.leaderboard import unique_labels
from lt_faceparse.reporting.longtail import ALPHA, HEAD_LOSS, TAIL_GAIN
from lt_faceparse.records import (class_f1, head_tail_means, mean_f1_ci, provenance_of, record_label,
                                  record_remedy_description, taxonomy_of_record)
from lt_faceparse.reporting.readme_run import what_was_run
from lt_faceparse.reporting.readme_rarity import rarity_section
from lt_faceparse.reporting.report import main_records, repeated_settings
from lt_faceparse.reporting.sweep_tables import fps_of, paper_frame
from lt_faceparse.reporting.tables import to_markdown
from lt_faceparse.speed.harness import select_speed

FILE_NOTES = {
    "leaderboard": "Leaderboard (Table 1 style) per comparable protocol group: per-class F1 in the paper's column "
                   "order, mean F1 with 95% CI, mIoU with/without background, head/tail means, F1 per presence "
                   "bin, params, FPS; plus the Δ-vs-SegFace view with paired-bootstrap significance. The published "
                   "CelebAMask-HQ/LaPa rows form their own groups (different data: never mixed with ours).",
    "figure1": "SegFace Figure 1 done properly: presence probability per class (bars) and every model's per-class F1 (lines).",
    "f1_vs_presence": "Per-class F1 against log presence probability with bootstrap 95% CI bars.",
    "confusion": "Row-normalised confusion heatmap per model, tail rows framed: where tail pixels go.",
    "qualitative": "Qualitative grid (Figure 3 style): image, ground truth, predictions, tail-class crops.",
    "class_legend": "Class colour legend used by every label map.",
    "token_masks": "Each SegFace class token's mask sigmoid(S_i) (Figure 4a style).",
    "token_attention": "Each class token's token-to-face cross-attention per decoder layer, overlaid on the image.",
    "table2a": "Table 2a: SegFace backbones (ours: trained + timing-only rows; the paper's next to them).",
    "table2b": "Table 2b: SegFace input resolution sweep (ours next to the paper's).",
    "speed": "All speed measurements (latency median/IQR, images/s, params, GFLOPs, peak memory).",
    "fps_vs_resolution": "FPS (and mean F1) against input resolution, ours and the paper's.",
    "longtail_table": "Long-tail table: head mean, tail mean, F1 per presence bin (training split) and mean F1 of "
                      "each compared record, each with a bootstrap 95% CI (remedies vs plain; models vs SegFace).",
    "longtail_delta": "Long-tail Δ table: each method minus its reference for the same group means, with "
                      "paired-bootstrap 95% CIs and p-values.",
    "longtail_figure": "Who gains, who pays: per-class ΔF1 (method − reference) against log presence, paired-bootstrap "
                       "95% CIs, one panel per method.",
}


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def _fps_text(fps: float | None) -> str:
    return "not timed" if fps is None else f"{fps:.1f} FPS"


def _rel(path: Path, root: Path) -> str:
    path = Path(path)
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _file_groups(paths: list[str]) -> list[str]:
    """``a.png, a.pdf, a.caption.txt`` -> ``a.{caption.txt,pdf,png}`` (one line per stem)."""
    stems: dict[str, set[str]] = {}
    for p in paths:
        for ext in ("caption.txt", "png", "pdf", "md", "csv", "tex"):
            if p.endswith("." + ext):
                stems.setdefault(p[: -len(ext) - 1], set()).add(ext)
                break
        else:
            stems.setdefault(p, set())
    return [f"{stem}.{{{','.join(sorted(exts))}}}" if len(exts) > 1 else (f"{stem}.{next(iter(exts))}" if exts else stem)
            for stem, exts in sorted(stems.items())]


def findings(outputs: Any, n_resamples: int = 1000) -> list[str]:
    """Headline findings as Markdown bullet lines, all numbers computed here. A comparison that cannot
    be made (records not scored on the same images) is listed in ``outputs.skipped``."""
    main = main_records(outputs.records)
    if not main:
        return ["- No result records were found."]
    tax = taxonomy_of_record(main[0])
    lines = []
    freq = outputs.frequency
    if freq is not None and freq.taxonomy.name == tax.name:
        presence = freq.presence()
        s = freq.summary
        rare = tax.accessory_ids or sorted(tax.foreground_ids, key=lambda i: presence[tax.names[i]])[:3]
        lines.append(
            f"- **{'The data is long-tailed' if tax.accessory_ids else 'Class presence'}**: in the "
            f"{s.get('num_images')} training images the "
            + ("tail (accessory) classes appear" if tax.accessory_ids else "rarest classes appear")
            + " with presence probability " + ", ".join(f"{tax[i].display} {100 * presence[tax.names[i]]:.1f}%"
                                                        for i in rare)
            + f" (foreground classes up to {100 * max(presence[tax.names[i]] for i in tax.foreground_ids):.0f}%); "
            f"Gini coefficient of the foreground classes' presence {s.get('gini_image'):.3f}, of their pixel "
            f"counts {s.get('gini_pixel'):.3f}.")
    ranked = sorted(main, key=lambda r: -(r.mean_f1 if r.mean_f1 == r.mean_f1 else -1))
    lines.append("- **Mean F1 (foreground classes, test split)**: " + "; ".join(
        f"{record_label(r)} {_pct(r.mean_f1)}"
        + (f" [95% CI {_pct(mean_f1_ci(r)[0])}, {_pct(mean_f1_ci(r)[1])}]" if mean_f1_ci(r) else "")
        for r in ranked) + ".")
    for same in repeated_settings(outputs.records, main):
        names = unique_labels(same)
        lines.append(f"- {len(same)} records share the setting of {record_label(same[0])} ({', '.join(names)}): the "
                     f"findings and figures use the first one, {names[0]} (scores "
                     + ", ".join(_pct(r.mean_f1) for r in same) + " mean F1); the leaderboard lists each.")
    segface = next((r for r in main if provenance_of(r).model == "segface"), None)
    if segface is not None:
        best = ranked[0]
        if best is segface and len(main) > 1:
            lines.append(f"- SegFace ({record_label(segface)}) has the highest mean F1 of the {len(main)} models.")
        elif best is not segface:
            lines.append(f"- SegFace does **not** have the highest mean F1: {record_label(best)} leads by "
                         f"{100 * (best.mean_f1 - segface.mean_f1):.2f} points.")
        for other in main:
            if other is segface:
                continue
            try:
                test = paired_bootstrap(other, segface, tax, n_resamples=n_resamples)
            except IncomparableError as err:  # the documented condition: no per-image stats on the same images
                outputs.skipped.append(f"finding 'SegFace − {record_label(other)}' (paired bootstrap): {err}")
                continue
            verdict = ("distinguishable from noise" if test.mean_lower > 0 or test.mean_upper < 0
                       else "not distinguishable from noise")
            tail_ids = [i for i in tax.accessory_ids]
            tail_deltas = ", ".join(f"{tax[i].display} {100 * test.delta[i]:+.2f}" for i in tail_ids
                                    if test.delta[i] == test.delta[i])
            lines.append(
                f"- SegFace − {record_label(other)}: Δ mean F1 {100 * test.mean_delta:+.2f} points "
                f"(paired bootstrap 95% CI [{100 * test.mean_lower:+.2f}, {100 * test.mean_upper:+.2f}], "
                f"p = {test.mean_p_value:.3f}, {test.num_images} test images): {verdict}."
                + (f" Tail classes: {tail_deltas or 'undefined on this split'}." if tail_ids else ""))
    lines.extend(_head_tail_lines(outputs, tax, main))
    seg_rows = sorted((r for r in outputs.sweep_rows if r.get("model") == "segface"), key=lambda r: r["resolution"])
    by_bb: dict[Any, list] = {}
    for r in seg_rows:
        by_bb.setdefault(r.get("backbone"), []).append(r)
    for bb, rows in by_bb.items():
        if len(rows) >= 2:
            lines.append(f"- **Resolution sweep** (SegFace {bb}): " + "; ".join(
                f"{r['resolution']} px: mean F1 {_pct(r['mean_f1'])}, " + _fps_text(fps_of(r, outputs.speed_records))
                for r in rows)
                + " (FPS at batch 1 on this CPU).")
    lines.extend(_cost_lines(outputs, main))
    lines.extend(_param_check(outputs.speed_records, tax))
    return lines


def _head_tail_lines(outputs: Any, tax: Any, main: list[Any]) -> list[str]:
    """Head vs tail means, the gap, and where the tail pixels go (SegFace's confusion matrix)."""
    if not tax.accessory_ids:
        return [f"- Taxonomy {tax.name} has no accessory (tail) classes: no head/tail split is reported."]
    lines = []
    heads = []
    for r in main:
        head, tail = head_tail_means(r, tax)
        f1 = class_f1(r)
        tail_text = ", ".join(f"{tax[i].display} {_pct(f1.get(i))}" for i in tax.accessory_ids)
        heads.append(f"{record_label(r)}: head {_pct(head)}, tail {_pct(tail)} ({tail_text})")
    lines.append("- **Head vs tail mean F1** (head = non-accessory foreground classes): " + "; ".join(heads) + ".")
    gaps = [(record_label(r), head_tail_means(r, tax)) for r in main]
    gaps = [(name, h - t) for name, (h, t) in gaps if h == h and t == t]
    if gaps:
        lines.append("- Every model scores lower on the tail than on the head classes: head − tail gap " + ", ".join(
            f"{name} {100 * g:.2f}" for name, g in gaps) + " points." if all(g > 0 for _, g in gaps) else
            "- Head − tail gap: " + ", ".join(f"{name} {100 * g:+.2f}" for name, g in gaps) + " points.")
    by_label = {record_label(r): r for r in main}
    for label, dest in outputs.tail_destinations.items():
        if label not in by_label or provenance_of(by_label[label]).model != "segface":
            continue
        parts = [f"{tax[tax.id_of(cls)].display} → " + ", ".join(
            f"{tax[tax.id_of(to)].display} {100 * share:.0f}%" for to, share in goes) for cls, goes in dest.items()]
        if parts:
            lines.append(f"- **Where tail pixels go** ({label}, share of each tail class's ground-truth pixels): "
                         + "; ".join(parts) + ".")
    return lines


def _cost_lines(outputs: Any, main: list[Any]) -> list[str]:
    speeds = []
    for r in main:
        prov = provenance_of(r)
        s = select_speed(outputs.speed_records, model=prov.model, backbone=prov.backbone,
                         resolution=prov.resolution)
        if s:
            speeds.append(f"{record_label(r)}: {s['params'] / 1e6:.3f} M params, "
                          f"{s['gflops']:.3f} GFLOPs, {s['fps']:.1f} FPS")
    return ["- **Cost** (batch 1, fp32, this CPU): " + "; ".join(speeds) + "."] if speeds else []


def _delta_text(d: Any) -> str:
    return (f"{100 * d.delta:+.2f} points [95% CI {100 * d.lower:+.2f}, {100 * d.upper:+.2f}], "
            f"p = {d.p_value:.3f}")


def longtail_section(outputs: Any) -> list[str]:
    """The "Long-tail remedies" section: every remedy against plain with paired-bootstrap Δ and p-values,
    the remedy chosen on val and whether it meets the bar (+10 tail points, p < 0.05, head loss at most
    1 point), stated whichever way the numbers go."""
    analyses = [a for a in outputs.longtail if a.comparison.kind == "remedies"]
    bar = (f"+{100 * TAIL_GAIN:.0f} tail points (paired bootstrap p < {ALPHA}) with at most {100 * HEAD_LOSS:.0f} "
           "head point lost")
    lines = ["## Long-tail remedies", ""]
    if not analyses:
        lines += ["No long-tail remedy was trained in these results (no record with a `longtail` setting or a "
                  "post-hoc option next to a plain record of the same model, backbone and resolution), so no "
                  f"remedy can be said to reach {bar}."]
        models = next((a for a in outputs.longtail if a.comparison.kind == "models"), None)
        if models is not None:
            lines.append(f"The long-tail table of the models ({models.comparison.title}) is "
                         f"`tables/{models.comparison.stem}.md` (Δ: `tables/{models.comparison.stem}_delta.md`).")
        return lines + [""]
    lines += ["Reference: the plain record (no `longtail` setting, no post-hoc option) of the same model, backbone "
              "and resolution; every remedy trained with the same data, schedule and budget. Δ = remedy − plain on "
              "the same test images; 95% CIs and p-values from a paired bootstrap over those images; p-values "
              "are per comparison, with Holm-adjusted values for the tail across the remedies of a group.", ""]
    for a in analyses:
        ref = a.comparison.reference
        lines.append(f"**{a.comparison.title}** ({ref.num_images} test images; tables "
                     f"`tables/{a.comparison.stem}.md`, `tables/{a.comparison.stem}_delta.md`):")
        lines.append("")
        head0, tail0 = (a.cis[0].groups.get(g, (float("nan"),))[0] if a.cis[0] else float("nan")
                        for g in ("head", "tail"))
        lines.append(f"- plain: head mean F1 {_pct(head0)}, tail mean F1 {_pct(tail0)}.")
        tail_p = [t.groups["tail"].p_value if t is not None and "tail" in t.groups else float("nan") for t in a.tests]
        adjusted = holm(tail_p)
        for label, record, test, p_adj in zip(a.comparison.labels, a.comparison.methods, a.tests, adjusted):
            if test is None:
                lines.append(f"- {label}: no paired test (not scored on the same images as plain).")
                continue
            parts = [f"tail {_delta_text(test.groups['tail'])} (Holm {p_adj:.3f})", f"head {_delta_text(test.groups['head'])}",
                     f"mean F1 {_delta_text(test.groups['mean'])}"]
            tail_ids = a.groups.get("tail", [])
            gains = [f"{a.taxonomy[i].display} {100 * test.delta[i]:+.1f}" for i in tail_ids if test.delta[i] == test.delta[i]]
            lines.append(f"- {label} ({record_remedy_description(record)}): " + "; ".join(parts)
                         + (f". Tail classes: {', '.join(gains)}" if gains else "") + ".")
        lines += ["", *_remedy_verdict(a, bar), ""]
    return lines


def _remedy_verdict(a: Any, bar: str) -> list[str]:
    """Which remedy val chooses and whether it (or any) meets the bar on test."""
    def meets(test: Any) -> bool:
        tail, head = test.groups["tail"], test.groups["head"]
        return tail.delta >= TAIL_GAIN and tail.p_value < ALPHA and head.delta >= -HEAD_LOSS

    out = []
    tested = [(label, test, val) for label, test, val in zip(a.comparison.labels, a.tests, a.val[1:]) if test is not None]
    ref_val = a.val[0] if a.val else None
    chosen = None
    if ref_val is not None and all(v is not None for _, _, v in tested) and tested:
        keep = [t for t in tested if t[2]["head"] - ref_val["head"] >= -HEAD_LOSS]
        pool = keep or tested
        chosen = max(pool, key=lambda t: t[2]["tail"])
        label, test, val = chosen
        out.append(f"- **Chosen on val** (highest val tail mean F1 among the remedies losing at most "
                   f"{100 * HEAD_LOSS:.0f} head point on val{'' if keep else '; none did, so among all'}): {label}, "
                   f"val tail {_pct(val['tail'])} vs plain {_pct(ref_val['tail'])}, val head {_pct(val['head'])} vs "
                   f"{_pct(ref_val['head'])} ({val['num_images']} val images). On test it "
                   + ("**meets**" if meets(test) else "does **not** meet") + f" the bar of {bar}: tail "
                   f"{_delta_text(test.groups['tail'])}, head {_delta_text(test.groups['head'])}.")
    else:
        out.append("- No choice on val: the validation records of these runs are missing.")
    passing = [label for label, test, _ in tested if meets(test)]
    if not passing:
        out.append(f"- **No remedy reached {bar}** on the test split.")
    elif chosen is None or passing != [chosen[0]]:
        out.append(f"- On test, {', '.join(passing)} reach{'es' if len(passing) == 1 else ''} {bar}"
                   + (" (not the val choice: reading this off the test split would be test-set selection)."
                      if chosen is not None and chosen[0] not in passing else "."))
    return out


def _param_check(speed_records: list[dict], taxonomy: Any) -> list[str]:
    """Our SegFace parameter counts next to the paper's Table 2a, backbone by backbone."""
    paper = paper_frame("2a")
    if paper is None:
        return []
    ours = {}
    for s in speed_records:
        if s.get("model") == "segface" and s.get("backbone"):
            ours.setdefault(s["backbone"], s["params"])
    pairs = []
    for _, row in paper.iterrows():
        if "fusion" in str(row["id"]) or row["backbone"] not in ours or row["params_m"] != row["params_m"]:
            continue
        pairs.append((row["backbone"], ours[row["backbone"]], row["params_m"]))
    if not pairs:
        return []
    extra = (taxonomy.num_classes - 11) * 256  # one 256-d class token per class (SegFace dim 256)
    parts = []
    for backbone, n, printed in pairs:
        eleven = n - extra
        verdict = "matches" if round(eleven / 1e6, 3) == round(printed, 3) else "DOES NOT match"
        parts.append(f"{backbone}: {n / 1e6:.3f} M here, {eleven / 1e6:.3f} M with 11 classes, {verdict} the "
                     f"printed {printed:.3f} M")
    return ["- **Parameter counts vs the paper's Table 2a** (SegFace, counted by our harness): " + "; ".join(parts)
            + f". The paper counts the 11-class model; each class adds one 256-d class token, so the "
              f"{taxonomy.num_classes}-class model has {extra:,} more parameters."]


def run_time_section(info: dict[str, Any]) -> list[str]:
    """Stage timings, the machine and its load, and each setting's training time and val scores."""
    timings = info.get("timings_s")
    if not timings:
        return []
    machine = info.get("machine", {})
    load = machine.get("load_average_1_5_15_min") or {}
    lines = ["## Run time", "",
             f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores visible"
             + (f", GPU {machine['gpu']}" if machine.get("gpu") else "")
             + f"), {machine.get('workers', 1)} training worker(s) with {machine.get('worker_threads')} torch thread(s) "
             f"each, torch {machine.get('torch')}. Load average (1/5/15 min) at start {load.get('start')}, at end "
             f"{load.get('end')}: a load above the core count means the machine was shared and the times are inflated.",
             ""]
    lines += [f"- {k}: {v:.1f} s" for k, v in timings.items()]
    settings = [s for s in info.get("settings", []) if s.get("train_seconds") is not None]
    if settings:
        lines += ["", "Per setting (trained side by side, so each time includes the other worker's load): training "
                  "seconds, seconds per epoch, and the val scores choices are made on:", ""]
        for s in settings:
            epochs = s.get("epoch_seconds") or []
            per_epoch = f"{sum(epochs) / len(epochs):.1f} s/epoch" if epochs else "-"
            lines.append(f"- {s['name']}: {s['train_seconds']:.0f} s ({per_epoch}, {s.get('train_images')} train "
                         f"images); val mean F1 {_pct(s.get('val_mean_f1'))}, head {_pct(s.get('val_head_mean_f1'))}, "
                         f"tail {_pct(s.get('val_tail_mean_f1'))}")
    return lines + [""]


def write_readme(out_dir: str | Path, outputs: Any, info: dict[str, Any]) -> Path:
    """Write ``out_dir/README.md`` from a :class:`ReportOutputs` and the run info."""
    out_dir = Path(out_dir)
    plan = info.get("plan", {})
    datasets = sorted({str(provenance_of(r).dataset) for r in outputs.records}) or ["no records"]
    synthetic = datasets == ["synthface-lt"]
    lines = [
        "# SynthFace-LT benchmark report" if plan else f"# Report: {', '.join(datasets)}",
        "",
        f"Generated by `{info.get('command', 'lt-faceparse report')}` on "
        f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; every number below is computed "
        "from the files in this folder (nothing is typed by hand). Rerun the command to regenerate it.",
        "",
    ]
    if synthetic:
        lines += [
            "**Read this first.** SynthFace-LT is a generated stand-in for CelebAMask-HQ (same format, classes and "
            "merge rules, long-tailed accessory classes); the models here are trained from scratch (no ImageNet "
            "weights) within the small budget stated under 'What was run'. The numbers show the pipeline and the "
            "long-tail effect at that scale; they are not the paper's numbers and must not be compared with them in "
            "absolute terms. The paper's rows appear next to ours only where the table says so, in separate rows.",
            "",
        ]
    if plan:
        lines += [
            "**Rerunning.** `lt-faceparse benchmark` trains every setting that the machine running it has not "
            "trained itself: the rows under `results/` name the SHA-256 of their weights, and a row is reused only "
            "when those weights are in that machine's run cache (`runs_dir` in `benchmark.json`). On a fresh clone "
            "everything is trained again and this folder is rewritten with the new numbers; an interrupted run "
            "resumes. `lt-faceparse benchmark --reuse-results` trains and times nothing: it re-renders the tables, "
            "figures and this README from the records under `results/` (figures that need the weights, such as the "
            "qualitative grid, are then skipped unless the weights are present).",
            "",
        ]
    if plan:
        lines += ["## What was run", "", *what_was_run(info), ""]
    lines += ["## Headline findings", "", *findings(outputs, plan.get("n_resamples", 1000)), ""]
    lines += longtail_section(outputs)
    lines += rarity_section(out_dir, plan)
    if outputs.leaderboard is not None and outputs.leaderboard.groups:
        lines += ["## Leaderboard (ours)", "", to_markdown(outputs.leaderboard.groups[0].table), ""]
    lines += ["## Files", ""]
    for name, paths in outputs.files.items():
        lines.append(f"- **{name}**: {FILE_NOTES.get(name, '')}")
        lines += [f"  - `{p}`" for p in _file_groups([_rel(p, out_dir) for p in paths])]
    if plan:
        lines += [
            "- **frequencies/**: class frequencies of the training split (`class_frequencies.csv`, `summary.json`, "
            "plot).",
            "- **results/**: one folder per trained setting: `test/record.json` + `per_image.npz` (the result record "
            "with bootstrap CIs), `val/record.json` (the same weights on the val split, where choices are made), "
            "`speed/` (speed record, when timed with the setting), `sweep.json` (summary row); `results/speed/` "
            "holds the speed measurements of the benchmark's speed stage.",
            "- **benchmark.json**: the plan, stage timings and machine of this run.",
        ]
    lines += ["- Every figure comes as PNG + PDF + `.caption.txt` (data, split, protocol, models).", ""]
    lines += run_time_section(info)
    if outputs.skipped:
        lines += ["## Not produced", "", *[f"- {s}" for s in outputs.skipped], ""]
    return atomic_write_text(out_dir / "README.md", "\n".join(lines))
