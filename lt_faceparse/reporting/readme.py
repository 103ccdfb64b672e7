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
from lt_faceparse.reporting.leaderboard import (class_f1, head_tail_means, mean_f1_ci, provenance_of, record_label,
                                                taxonomy_of_record)

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
}


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


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
    from lt_faceparse.errors import IncomparableError
    from lt_faceparse.metrics.bootstrap import paired_bootstrap
    from lt_faceparse.reporting.report import main_records, fps_of

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
    segface = next((r for r in main if provenance_of(r).get("model") == "segface"), None)
    if segface is not None:
        best = ranked[0]
        if best is segface:
            lines.append(f"- SegFace ({record_label(segface)}) has the highest mean F1 of the {len(main)} models.")
        else:
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
                f"{r['resolution']} px: mean F1 {_pct(r['mean_f1'])}, {fps_of(r, outputs.speed_records):.1f} FPS"
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
        if label not in by_label or provenance_of(by_label[label]).get("model") != "segface":
            continue
        parts = [f"{tax[tax.id_of(cls)].display} → " + ", ".join(
            f"{tax[tax.id_of(to)].display} {100 * share:.0f}%" for to, share in goes) for cls, goes in dest.items()]
        if parts:
            lines.append(f"- **Where tail pixels go** ({label}, share of each tail class's ground-truth pixels): "
                         + "; ".join(parts) + ".")
    return lines


def _cost_lines(outputs: Any, main: list[Any]) -> list[str]:
    from lt_faceparse.speed import select_speed

    speeds = []
    for r in main:
        prov = provenance_of(r)
        s = select_speed(outputs.speed_records, model=prov.get("model"), backbone=prov.get("backbone"),
                         resolution=prov.get("resolution"))
        if s:
            speeds.append(f"{record_label(r)}: {s['params'] / 1e6:.3f} M params, "
                          f"{s['gflops']:.3f} GFLOPs, {s['fps']:.1f} FPS")
    return ["- **Cost** (batch 1, fp32, this CPU): " + "; ".join(speeds) + "."] if speeds else []


def _param_check(speed_records: list[dict], taxonomy: Any) -> list[str]:
    """Our SegFace parameter counts next to the paper's Table 2a, backbone by backbone."""
    from lt_faceparse.reporting.report import _paper_frame

    paper = _paper_frame("2a")
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


def write_readme(out_dir: str | Path, outputs: Any, info: dict[str, Any]) -> Path:
    """Write ``out_dir/README.md`` from a :class:`ReportOutputs` and the run info."""
    from lt_faceparse.reporting.tables import to_markdown

    out_dir = Path(out_dir)
    plan = info.get("plan", {})
    datasets = sorted({str(provenance_of(r).get("dataset")) for r in outputs.records}) or ["no records"]
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
            "weights) for a few epochs at low resolution on a CPU. The numbers show the pipeline and the long-tail "
            "effect at toy scale; they are not the paper's numbers and must not be compared with them in absolute "
            "terms. The paper's rows appear next to ours only where the table says so, in separate rows.",
            "",
        ]
    if plan:
        lines += [
            "## What was run",
            "",
            f"- Plan `{plan.get('name')}`: {plan.get('num_images')} SynthFace-LT images at {plan.get('image_size')} px, "
            f"split {plan.get('splits')} (train/val/test), seed {plan.get('seed')}.",
            f"- Models ({plan.get('epochs')} epochs, batch {plan.get('batch')}, AdamW lr {plan.get('lr')}, "
            f"MultiStepLR at {plan.get('milestones')}, input {plan.get('resolution')} px, no pretraining, last-epoch "
            "checkpoint): " + ", ".join(f"{m} {k}" for m, k in plan.get("models", [])) + ".",
            f"- SegFace resolution sweep: {[plan.get('resolution'), *plan.get('sweep_resolutions', [])]} px; "
            f"timing-only resolutions {plan.get('speed_resolutions')}; timing-only SegFace backbones "
            f"{plan.get('speed_backbones') or 'none'}.",
            f"- Scoring: test split, 'input' protocol (network resolution), pixel counts pooled over the split; "
            f"95% CIs by percentile bootstrap over test images ({plan.get('n_resamples')} resamples).",
            f"- Plan note: {plan.get('notes')}.",
            "",
        ]
    lines += ["## Headline findings", "", *findings(outputs, plan.get("n_resamples", 1000)), ""]
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
            "with bootstrap CIs), `speed/` (speed record), `sweep.json` (summary row); `results/speed/` holds "
            "timing-only measurements.",
            "- **benchmark.json**: the plan, stage timings and machine of this run.",
        ]
    lines += ["- Every figure comes as PNG + PDF + `.caption.txt` (data, split, protocol, models).", ""]
    timings = info.get("timings_s")
    if timings:
        machine = info.get("machine", {})
        lines += ["## Run time", "",
                  f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores visible, {machine.get('torch_threads')} "
                  f"torch threads), torch {machine.get('torch')}; the machine may have been shared during the run.", ""]
        lines += [f"- {k}: {v:.1f} s" for k, v in timings.items()]
        lines.append("")
    if outputs.skipped:
        lines += ["## Not produced", "", *[f"- {s}" for s in outputs.skipped], ""]
    return atomic_write_text(out_dir / "README.md", "\n".join(lines))
