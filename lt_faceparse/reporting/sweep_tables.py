"""Tables 2a (backbones) and 2b (resolutions) from sweep rows, the speed table and FPS vs resolution."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from lt_faceparse.reporting import figures as F
from lt_faceparse.reporting.outputs import ReportOutputs
from lt_faceparse.reporting.published import published_frame
from lt_faceparse.reporting.tables import Column, Table, write_table
from lt_faceparse.speed.harness import select_speed


def paper_frame(table: str):
    """The paper's Table 2a/2b rows (percent, as printed), or None when the table is not shipped."""
    try:
        return published_frame(table)
    except KeyError:
        return None


def plain_rows(rows: Sequence[dict]) -> list[dict]:
    """Sweep rows trained without a long-tail remedy (rows from before remedies count as plain): the
    backbone and resolution tables compare architectures, not remedies."""
    return [r for r in rows if r.get("remedy", "plain") == "plain"]


def main_setting(rows: Sequence[dict]) -> tuple[str | None, str | None, int | None]:
    """(model, backbone, resolution) of the sweep tables: SegFace when it was swept (else the most
    swept model); the resolution shared by most rows (the model comparison's); the model's most
    common backbone."""
    if not rows:
        return None, None, None
    models = [r.get("model") for r in rows]
    model = "segface" if "segface" in models else max(set(models), key=models.count)
    mine = [r for r in rows if r.get("model") == model]
    resolutions = [r["resolution"] for r in rows]
    resolution = max({r["resolution"] for r in mine}, key=lambda v: (resolutions.count(v), v))
    backbones = [r.get("backbone") for r in mine]
    backbone = max(set(backbones), key=lambda b: (backbones.count(b), str(b)))
    return model, backbone, resolution


def fps_of(row: dict, speed_records: Sequence[dict]) -> float | None:
    """FPS of a sweep row: the newest batch-1 speed record of its setting, else the row's own."""
    speed = select_speed(speed_records, model=row.get("model"), backbone=row.get("backbone"),
                         resolution=row["resolution"])
    return speed["fps"] if speed else row.get("fps")


def _pct(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def table_2a(sweep_rows: Sequence[dict], speed_records: Sequence[dict], *, resolution: int | None,
             model: str = "segface") -> Table:
    """Backbones: our ``model`` rows at ``resolution`` (trained, or speed-only) next to the paper's SegFace."""
    columns = [
        Column("source", "Source", "str"), Column("model", "Model", "str"), Column("backbone", "Backbone", "str"),
        Column("res", "Res", "str"),
        Column("mean_f1", "Mean F1", "pct"), Column("miou_bg", "mIoU (w/ bg)", "pct"),
        Column("miou_nobg", "mIoU (no bg)", "pct"), Column("fps", "FPS", "float"), Column("device", "Timed on", "str"),
        Column("params", "Params (M)", "millions"), Column("gflops", "GFLOPs", "float"),
    ]
    rows = []
    sweep_rows = plain_rows(sweep_rows)
    trained = {r.get("backbone") for r in sweep_rows if r.get("model") == model and r["resolution"] == resolution}
    for r in sorted((r for r in sweep_rows if r.get("model") == model and r["resolution"] == resolution),
                    key=lambda r: str(r.get("backbone"))):
        rows.append({"source": f"ours ({r['dataset']})", "model": model, "backbone": r.get("backbone"),
                     "res": str(r["resolution"]),
                     "mean_f1": _pct(r.get("mean_f1")), "miou_bg": _pct(r.get("mean_iou_with_bg")),
                     "miou_nobg": _pct(r.get("mean_iou_without_bg")), "fps": fps_of(r, speed_records),
                     "device": f"{r.get('device')} batch 1", "params": r.get("params"), "gflops": r.get("gflops")})
    for s in sorted((s for s in speed_records if s.get("model") == model and s.get("trained") is False
                     and s["resolution"] == resolution and s["batch_size"] == 1 and s.get("backbone") not in trained),
                    key=lambda s: str(s.get("backbone"))):
        rows.append({"source": "ours (untrained, timing only)", "model": model, "backbone": s.get("backbone"),
                     "res": str(s["resolution"]), "fps": s["fps"], "device": f"{s['device']} batch 1",
                     "params": s["params"], "gflops": s.get("gflops")})
    paper = paper_frame("2a")
    if paper is not None:
        for _, p in paper.iterrows():
            iou = p["mean_iou"] / 100 if p["mean_iou"] == p["mean_iou"] else None
            rows.append({"source": "paper (CelebAMask-HQ)", "model": "segface",
                         "backbone": p["backbone"] + ("" if "fusion" not in p["id"] else " (w/o fusion)"),
                         "res": str(p["resolution"]), "mean_f1": p["mean_f1"] / 100,
                         "miou_bg": iou if p["mean_iou_convention"] == "with_bg" else None,
                         "miou_nobg": iou if p["mean_iou_convention"] == "without_bg" else None,
                         "fps": p["fps"], "device": "paper GPU (not stated)",
                         "params": None if p["params_m"] != p["params_m"] else p["params_m"] * 1e6})
    return Table(columns, rows, title=f"Table 2a: backbones ({model}; the paper's SegFace rows below)",
                 caption=("Ours: SegFace trained and scored on our benchmark data at the stated resolution "
                          "(mean F1 over foreground classes; mIoU with and without background); FPS = images/s "
                          "at batch 1 on our device (fp32, median of repeated runs); GFLOPs per image from "
                          "torch's FLOP counter (multiply-add = 2). 'Untrained' rows time the architecture "
                          "only. Paper rows: SegFace Table 2a on CelebAMask-HQ at 512 px (its Params count the "
                          "11-class model; hardware not stated). The two halves are not comparable in F1 "
                          "(different data, resolution and training budget); compare params and relative speed."))


def table_2b(sweep_rows: Sequence[dict], *, backbone: str | None, model: str = "segface",
             speed_records: Sequence[dict] = ()) -> Table:
    """Resolution sweep: our ``model`` rows of ``backbone`` next to the paper's SegFace Swin-B sweep."""
    columns = [
        Column("source", "Source", "str"), Column("model", "Model", "str"), Column("backbone", "Backbone", "str"),
        Column("res", "Res", "int"),
        Column("fps", "FPS", "float"), Column("mean_f1", "Mean F1", "pct"), Column("ci", "95% CI (mF1)", "ci"),
        Column("miou_bg", "mIoU (w/ bg)", "pct"), Column("miou_nobg", "mIoU (no bg)", "pct"),
    ]
    rows = []
    for r in sorted((r for r in plain_rows(sweep_rows) if r.get("model") == model and r.get("backbone") == backbone),
                    key=lambda r: r["resolution"]):
        ci = r.get("mean_f1_ci")
        rows.append({"source": f"ours ({r['dataset']}, {r.get('device')})", "model": model, "backbone": backbone,
                     "res": r["resolution"], "fps": fps_of(r, speed_records), "mean_f1": _pct(r.get("mean_f1")),
                     "ci": tuple(ci) if ci and None not in ci else None,
                     "miou_bg": _pct(r.get("mean_iou_with_bg")), "miou_nobg": _pct(r.get("mean_iou_without_bg"))})
    paper = paper_frame("2b")
    if paper is not None:
        for _, p in paper.sort_values("resolution").iterrows():
            iou = p["mean_iou"] / 100
            rows.append({"source": "paper (CelebAMask-HQ)", "model": "segface", "backbone": p["backbone"],
                         "res": int(p["resolution"]),
                         "fps": p["fps"], "mean_f1": p["mean_f1"] / 100,
                         "miou_bg": iou if p["mean_iou_convention"] == "with_bg" else None,
                         "miou_nobg": iou if p["mean_iou_convention"] == "without_bg" else None})
    return Table(columns, rows, title=f"Table 2b: input resolution ({model}; the paper's SegFace rows below)",
                 caption=("Ours: SegFace trained and scored at each resolution on our benchmark data; FPS at "
                          "batch 1 on our device (fp32). Paper: SegFace Swin-B on CelebAMask-HQ (Table 2b; "
                          "hardware and batch size not stated)."))


def speed_table(speed_records: Sequence[dict]) -> Table:
    columns = [
        Column("model", "Model", "str"), Column("backbone", "Backbone", "str"), Column("resolution", "Res", "int"),
        Column("batch_size", "Batch", "int"), Column("where", "Device", "str"),
        Column("latency_ms_median", "Latency (ms, median)", "float"), Column("latency_ms_iqr", "IQR (ms)", "float"),
        Column("images_per_s", "Images/s", "float"), Column("params", "Params (M)", "millions"),
        Column("gflops", "GFLOPs/img", "float3"), Column("peak_memory_mb", "Peak mem (MiB)", "float1"),
    ]
    rows = []
    for s in sorted(speed_records, key=lambda s: (s.get("model", ""), str(s.get("backbone")), s["resolution"],
                                                  s["batch_size"], s["device"], s["dtype"])):
        rows.append({**s, "backbone": s.get("backbone") or "-",
                     "where": f"{s['device']} {s['dtype']}{' compiled' if s.get('compile') else ''} ({s.get('num_threads')} thr)"})
    devices = sorted({s.get("device_name", "?") for s in speed_records})
    return Table(columns, rows, title="Speed measurements",
                 caption=("Latency of one forward pass of a batch after warm-up, device synchronised, median and "
                          "inter-quartile range over repeated runs; images/s = batch / median latency; GFLOPs per "
                          "image from torch.utils.flop_counter (multiply-add = 2 FLOPs); peak memory on CUDA only. "
                          f"Devices: {'; '.join(devices)}."))


def fps_curves(speed_records: Sequence[dict], batch_size: int = 1) -> list[F.ResolutionCurve]:
    groups: dict[tuple, dict[int, float]] = defaultdict(dict)
    for s in speed_records:
        if s["batch_size"] != batch_size:
            continue
        key = (s.get("model"), s.get("backbone"), s["device"], s["dtype"])
        groups[key][s["resolution"]] = s["fps"]
    curves = []
    for (model, backbone, device, dtype), values in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if len(values) < 2:
            continue
        res = sorted(values)
        name = f"{model} ({backbone})" if backbone else str(model)
        curves.append(F.ResolutionCurve(f"ours: {name}, {device} {dtype}", res, [values[r] for r in res]))
    return curves


def write_sweep_outputs(outputs: ReportOutputs, tables_dir: Path, figures_dir: Path) -> None:
    """Tables 2a/2b from the sweep rows, the speed table and the FPS (and F1) vs resolution figure."""
    model, backbone, resolution = main_setting(outputs.sweep_rows)
    if outputs.sweep_rows:
        outputs.add("table2a", write_table(table_2a(outputs.sweep_rows, outputs.speed_records, resolution=resolution,
                                                    model=model), tables_dir, "table2a_backbones"))
        outputs.add("table2b", write_table(table_2b(outputs.sweep_rows, backbone=backbone, model=model,
                                                    speed_records=outputs.speed_records), tables_dir,
                                           "table2b_resolution"))
    else:
        outputs.skipped.append("Tables 2a/2b: no sweep rows (sweep.json) under the results folder")
    if outputs.speed_records:
        outputs.add("speed", write_table(speed_table(outputs.speed_records), tables_dir, "speed"))
        curves = fps_curves(outputs.speed_records)
        f1_curves = []
        seg_rows = sorted((r for r in plain_rows(outputs.sweep_rows)
                           if r.get("model") == model and r.get("backbone") == backbone),
                          key=lambda r: r["resolution"])
        if len(seg_rows) >= 2:
            name = f"{model} ({backbone})" if backbone else str(model)
            f1_curves.append(F.ResolutionCurve(f"ours: {name}, {seg_rows[0]['dataset']}",
                                               [r["resolution"] for r in seg_rows],
                                               [100 * r["mean_f1"] for r in seg_rows]))
        paper = paper_frame("2b")
        if paper is not None:
            paper = paper.sort_values("resolution")
            curves.append(F.ResolutionCurve("paper: segface (swin_base), GPU not stated",
                                            paper["resolution"].tolist(), paper["fps"].tolist()))
            if f1_curves:
                f1_curves.append(F.ResolutionCurve("paper: segface (swin_base), CelebAMask-HQ",
                                                   paper["resolution"].tolist(), paper["mean_f1"].tolist()))
        if curves:
            outputs.add("fps_vs_resolution", F.save_figure(
                F.fps_resolution_figure(curves, f1_curves), figures_dir, "fps_vs_resolution",
                "Left: FPS (images/s at batch 1, fp32, median over repeated runs after warm-up) against square input "
                "resolution; ours on the device named in tables/speed.md, the paper's on an unstated GPU (its "
                "Table 2b). Right (when a resolution sweep was trained): mean F1 against resolution, ours on our "
                "benchmark data, the paper's on CelebAMask-HQ. Absolute values are not comparable across "
                "devices or datasets; the shapes are."))
