"""Paper-style report from a results folder: leaderboard, Figure 1, F1 vs presence, confusion
heatmaps, Tables 2a/2b, FPS vs resolution, qualitative grid and token-attention figures.

Inputs are what the other layers write: result records (``record.json``), speed records
(``speed-*.json``), sweep rows (``sweep.json``), a class-frequency report folder
(``class_frequencies.csv`` + ``summary.json``) and, for the figures that need predictions, the weight
files named in the records' provenance plus the dataset they were scored on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lt_faceparse.errors import DataError
from lt_faceparse.reporting import figures as F
from lt_faceparse.reporting.leaderboard import (
    NO_POSTHOC,
    Leaderboard,
    build_leaderboard,
    class_ci,
    class_f1,
    collect_records,
    group_records,
    head_tail_means,
    is_reported,
    mean_f1_ci,
    merge_text,
    provenance_of,
    record_label,
    taxonomy_of_record,
    write_leaderboard,
)
from lt_faceparse.reporting.longtail import is_plain
from lt_faceparse.reporting.tables import Column, Table, file_slug, write_table
from lt_faceparse.taxonomy import Taxonomy


@dataclass
class ReportOutputs:
    """What a report run produced: files by name, the records it read and numbers for the README."""

    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    records: list[Any] = field(default_factory=list)
    leaderboard: Leaderboard | None = None
    sweep_rows: list[dict] = field(default_factory=list)
    speed_records: list[dict] = field(default_factory=list)
    frequency: Any = None
    tail_destinations: dict[str, dict] = field(default_factory=dict)
    longtail: list[Any] = field(default_factory=list)  # reporting.longtail.LongTailAnalysis per comparison
    skipped: list[str] = field(default_factory=list)

    def add(self, name: str, paths: Any) -> None:
        values = list(paths.values()) if isinstance(paths, dict) else list(paths)
        self.files.setdefault(name, []).extend(Path(p) for p in values)


# ---- captions ---------------------------------------------------------------------------------------

def data_caption(records: Sequence[Any]) -> str:
    """One sentence naming data, split, protocol, resolution(s) and taxonomy of ``records``."""
    if not records:
        return ""
    prov = provenance_of(records[0])
    fmt = prov.get("data_format")
    resolutions = sorted({int(provenance_of(r)["resolution"]) for r in records if provenance_of(r).get("resolution")})
    res_text = ", ".join(f"{r} px" for r in resolutions) or "unknown resolution"
    images = records[0].num_images
    return (f"Data: {prov.get('dataset')}"
            + (f" ({fmt} format)" if fmt and fmt != prov.get("dataset") else "")
            + f", {prov.get('split')} split"
            + (f" ({images} images)" if images else "")
            + f", taxonomy {records[0].taxonomy}, merge preset {merge_text(prov)}; "
            f"scoring protocol '{prov.get('protocol')}' at the network input resolution ({res_text}).")


def models_caption(records: Sequence[Any]) -> str:
    parts = []
    for r in records:
        prov = provenance_of(r)
        epochs = f", {prov['epochs']} epochs" if prov.get("epochs") else ""
        parts.append(f"{record_label(r)} (pretraining {prov.get('pretraining')}, checkpoint {prov.get('checkpoint_rule')}"
                     f"{epochs})")
    return "Models: " + "; ".join(parts) + "."


# ---- presence / frequency ---------------------------------------------------------------------------

def presence_by_id(frequency: Any, taxonomy: Taxonomy) -> dict[int, float]:
    """Class id -> presence probability from a :class:`FrequencyTable`."""
    presence = frequency.presence()
    return {taxonomy.id_of(name): float(p) for name, p in presence.items() if name in taxonomy.names}


def frequency_caption(frequency: Any) -> str:
    s = frequency.summary
    return (f"Presence probability = share of the {s.get('num_images')} images of the {s.get('dataset')} "
            f"{s.get('split')} split (merge {merge_text(s)}) containing the class.")


def series_of(records: Sequence[Any], taxonomy: Taxonomy) -> list[F.Series]:
    out = []
    for r in records:
        by_name = class_ci(r)
        intervals = {taxonomy.id_of(n): v for n, v in by_name.items() if n in taxonomy.names}
        out.append(F.Series(record_label(r), class_f1(r), intervals or None))
    return out


# ---- Table 2a / 2b -----------------------------------------------------------------------------------

def _paper_frame(table: str):
    """The paper's Table 2a/2b rows (percent, as printed), or None when the table is not shipped."""
    from lt_faceparse.reporting.published import published_frame

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
    from lt_faceparse.speed.harness import select_speed

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
    paper = _paper_frame("2a")
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
    paper = _paper_frame("2b")
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


# ---- examples: qualitative grid and token attention ---------------------------------------------------

def example_tail(record: Any, taxonomy: Taxonomy) -> list[int]:
    """The classes the examples should show, from common to rare: the accessory (tail) classes, or,
    for a taxonomy without accessories, the rarest third of the foreground classes by presence in
    the record's images."""
    if taxonomy.accessory_ids:
        return list(taxonomy.accessory_ids)
    stats = record.per_image
    fg = taxonomy.foreground_ids
    if stats is None or not fg:
        return []
    presence = (stats.gt[:, fg] > 0).mean(0)
    rarest = sorted(range(len(fg)), key=lambda i: (presence[i], fg[i]))[:max(1, len(fg) // 3)]
    return [fg[i] for i in reversed(rarest)]


def pick_examples(record: Any, taxonomy: Taxonomy, count: int) -> list[int]:
    """Dataset indices of the ``count`` images with the most tail classes (then most tail pixels);
    tail classes as in :func:`example_tail`."""
    stats = record.per_image
    if stats is None:
        return []
    tail = example_tail(record, taxonomy)
    present = (stats.gt[:, tail] > 0).sum(1)
    pixels = stats.gt[:, tail].sum(1)
    order = sorted(range(stats.num_images), key=lambda i: (-present[i], -pixels[i], int(stats.image_ids[i])))
    return [int(stats.image_ids[i]) for i in order[:count]]


def example_indices(record: Any, dataset: Any, taxonomy: Taxonomy, count: int) -> list[int]:
    """Dataset indices of :func:`pick_examples`' images, found by name when the record has image names
    (a :class:`DataError` when the dataset lacks one: not the data the record was scored on)."""
    picked = pick_examples(record, taxonomy, count)
    stats = record.per_image
    if stats is None or stats.names is None:
        return picked
    name_of = dict(zip(stats.image_ids.tolist(), stats.names))
    position = {name: i for i, name in enumerate(dataset.names)}
    missing = [name_of[i] for i in picked if name_of[i] not in position]
    if missing:
        raise DataError(dataset.root, f"the {dataset.split} split here lacks images the record {record.path} was "
                                      f"scored on (e.g. {missing[:3]}); pass --data-root with the right dataset")
    return [position[name_of[i]] for i in picked]


def _load_models(records: Sequence[Any], device: str) -> list[tuple[Any, Any]]:
    from lt_faceparse.weights import load_model

    loaded = []
    for r in records:
        weights = provenance_of(r).get("weights")
        if weights and Path(weights).is_file():
            model, _ = load_model(weights, map_location=device)
            loaded.append((r, model))
    return loaded


def _predict(model: Any, image: Any, device: str) -> np.ndarray:
    import torch

    with torch.inference_mode():
        logits = model(image.unsqueeze(0).to(device))
    return logits[0].argmax(0).cpu().numpy().astype(np.uint8)


def example_dataset_root(record: Any, data_root: str | Path | None) -> tuple[Path | None, str | None]:
    """(root, None) of the images a record was scored on: ``data_root`` (the ``--data-root`` flag)
    when given, else the root stored in the record's provenance; or (None, why not) when there is
    none or it does not exist (moved, or the record was made on another machine)."""
    prov = provenance_of(record)
    where = f" (record {record.path})" if getattr(record, "path", None) else ""
    if data_root is not None:
        if not Path(data_root).is_dir():
            raise DataError(data_root, "--data-root: no such dataset folder")
        return Path(data_root), None
    root = prov.get("data_root")
    if not root:
        return None, (f"the record{where} does not say where its images are (written before records kept "
                      "their dataset root); pass --data-root DIR")
    if not Path(root).is_dir():
        return None, (f"the dataset root {root} stored in the record{where} does not exist (moved, or made on "
                      "another machine); pass --data-root DIR with the dataset's new location")
    return Path(root), None


def example_figures(records: Sequence[Any], out_dir: Path, outputs: ReportOutputs, *, data_root: str | None,
                    count: int, device: str, suffix: str = "") -> None:
    """Qualitative grid (Figure 3 style) and token figures (Figure 4a + attention per layer); the
    images come from the dataset root stored in the records (or ``data_root``). ``suffix`` ends every
    file stem (one per protocol group when a report has several)."""
    from lt_faceparse.data import build_dataset, dataset_class
    from lt_faceparse.data.transforms import denormalize
    from lt_faceparse.reporting import attention as A

    if not records:
        return
    first = records[0]
    prov = provenance_of(first)
    root, why_not = example_dataset_root(first, data_root)
    if root is None:
        outputs.skipped.append(f"qualitative and token figures: {why_not}")
        return
    fmt = prov.get("data_format") or prov.get("dataset")
    resolution = prov.get("resolution")
    same_res = [r for r in records if provenance_of(r).get("resolution") == resolution]
    loaded = _load_models(same_res, device)
    if not loaded:
        outputs.skipped.append("qualitative and token figures: no weight file named in the records exists ("
                               + ", ".join(str(provenance_of(r).get("weights")) for r in same_res) + ")")
        return
    taxonomy = taxonomy_of_record(first)
    folder = dataset_class(fmt).dataset_name == "folder"
    dataset = build_dataset(fmt, root, prov.get("split"), resolution=resolution, merge=prov.get("merge") or "segface",
                            taxonomy=taxonomy if folder else None)
    indices = example_indices(first, dataset, taxonomy, count)
    samples = [dataset[i] for i in indices]
    images = [denormalize(s.image) for s in samples]
    labels = [s.label.numpy().astype(np.uint8) for s in samples]
    short = short_labels([r for r, _ in loaded])
    predictions = {name: [_predict(m, s.image, device) for s in samples] for name, (r, m) in zip(short, loaded)}
    caption_base = data_caption(same_res) + " " + models_caption([r for r, _ in loaded])
    tail = example_tail(first, taxonomy)
    tail_text = ("tail (accessory) classes" if taxonomy.accessory_ids else
                 "rarest classes (" + ", ".join(taxonomy[i].display for i in tail) + "; the taxonomy has no "
                 "accessory classes)")
    fig = F.qualitative_figure(images, labels, predictions, taxonomy, names=[s.name for s in samples],
                               crop_classes=tail)
    outputs.add("qualitative", F.save_figure(fig, out_dir, f"qualitative{suffix}", (
        f"Qualitative comparison (SegFace Figure 3 style): input, ground truth, each model's prediction, and a "
        f"zoomed crop around the rarest of the {tail_text} present (ground truth, then each model). Images "
        f"chosen as the test images with the most of these classes. Colours: class palette (class_legend). "
        "Columns: "
        + ", ".join(f"{name} = {record_label(r)}" for name, (r, _) in zip(short, loaded)) + ". " + caption_base)))
    outputs.add("class_legend", F.save_figure(F.legend_figure(taxonomy), out_dir, "class_legend",
                                              f"Class colours of taxonomy {taxonomy.name}."))

    for r, model in loaded:
        if not A.supports_token_maps(model) or provenance_of(r).get("model") != "segface":
            continue
        for n, (sample, image, label) in enumerate(zip(samples[:2], images[:2], labels[:2])):
            maps = A.token_maps(model, sample.image.to(device))
            classes = A.default_classes(label, taxonomy)
            stem = f"token_masks_{file_slug(record_label(r))}{suffix}_{n}"
            share = {taxonomy[c].display: A.attention_peak_in_class(maps, label, c) for c in classes}
            share_text = ", ".join(f"{k} {100 * v:.0f}%" for k, v in share.items() if v == v)
            outputs.add("token_masks", F.save_figure(
                A.token_mask_figure(image, maps, taxonomy, classes), out_dir, stem,
                f"Class-token masks sigmoid(S_i) of {record_label(r)} on test image {sample.name} (SegFace Figure 4a "
                f"style; white = 1). Classes: tail classes present first, then head classes. " + caption_base))
            stem = f"token_attention_{file_slug(record_label(r))}{suffix}_{n}"
            outputs.add("token_attention", F.save_figure(
                A.token_attention_figure(image, maps, taxonomy, classes), out_dir, stem,
                f"Token-to-face cross-attention of each class token of {record_label(r)} per decoder layer (last "
                f"column: the final token-to-face attention), averaged over heads, upsampled from the stride-4 face "
                f"tokens and scaled to each map's maximum, on test image {sample.name}. Share of the final-layer "
                f"attention mass on the token's own ground-truth class: {share_text}. " + caption_base))
        break  # one SegFace model is enough for the token figures


def short_labels(records: Sequence[Any]) -> list[str]:
    """Panel titles: the model name, plus the backbone's last name part and the resolution only
    where needed to tell records apart."""
    def parts(r: Any, level: int) -> str:
        prov = provenance_of(r)
        name = str(prov.get("model") or record_label(r))
        if level >= 1 and prov.get("backbone"):
            name += f" ({str(prov['backbone']).split('/')[-1]})"
        if level >= 2 and prov.get("resolution"):
            name += f" @{prov['resolution']}"
        return name

    for level in range(3):
        labels = [parts(r, level) for r in records]
        if len(set(labels)) == len(labels):
            return labels
    return [record_label(r) for r in records]


# ---- the report ---------------------------------------------------------------------------------------

def run_report(results: str | Path, out_dir: str | Path, *, freq: str | Path | None = None,
               speed: str | Path | None = None, include_reported: bool = True, reference: str | None = None,
               split: str | None = "test", data_root: str | None = None, examples: int = 4,
               device: str = "cpu", n_resamples: int = 1000) -> ReportOutputs:
    """Write every table and figure the inputs allow under ``out_dir`` (``tables/``, ``figures/``)."""
    from lt_faceparse.analysis.frequency import FrequencyTable
    from lt_faceparse.reporting.sweep_rows import find_sweep_rows
    from lt_faceparse.speed.harness import find_speed_records

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

    # leaderboard: our groups, plus the published rows as their own groups
    published = []
    if include_reported:
        from lt_faceparse.reporting.published import load_published

        published = load_published()
    if reference is None:
        reference = next((record_label(r) for r in records
                          if provenance_of(r).get("model") == "segface" and is_plain(r)), None)
    bins = None
    if frequency is not None:
        bins = {str(frequency.summary.get("dataset")): frequency.bins()}
    board = build_leaderboard([*records, *published], speed_records=outputs.speed_records, reference=reference,
                              n_resamples=n_resamples, bins=bins)
    outputs.leaderboard = board
    outputs.add("leaderboard", write_leaderboard(board, tables_dir))

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

    # Tables 2a / 2b and speed
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
        paper = _paper_frame("2b")
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
    return outputs


def longtail_report(members: Sequence[Any], main: Sequence[Any], outputs: ReportOutputs, *, frequency: Any,
                    results: str | Path, split: str | None, reference: str | None, n_resamples: int) -> None:
    """Long-tail tables and ΔF1-vs-presence figures: the remedies in ``members`` against plain, and the
    models of ``main`` (one protocol group) against ``reference`` (see :mod:`lt_faceparse.reporting.longtail`)."""
    from lt_faceparse.reporting.longtail import find_comparisons, write_longtail

    comparisons, notes = find_comparisons(members, main, model_reference=reference)
    outputs.skipped.extend(notes)
    if not comparisons:
        return
    val_records = {}
    if split == "test":  # the validation records saved next to the test records (choices are made on val)
        val_records = {provenance_of(r).get("run"): r for r in collect_records(results, split="val")
                       if provenance_of(r).get("run")}
    if frequency is None:
        outputs.skipped.append("long-tail ΔF1 vs presence figure and presence bins: no --freq folder given")
    outputs.longtail.extend(write_longtail(
        comparisons, frequency=frequency, tables_dir=outputs.out_dir / "tables", figures_dir=outputs.out_dir / "figures",
        add=outputs.add, n_resamples=n_resamples, val_records=val_records,
        caption_extra=models_caption([c.reference for c in comparisons])))


def main_records(records: Sequence[Any]) -> list[Any]:
    """One plain record (no long-tail remedy, no post-hoc option) per (model, backbone): the one at
    the most common resolution, SegFace first."""
    records = [r for r in records if is_plain(r)] or list(records)
    resolutions = [provenance_of(r).get("resolution") for r in records]
    common = max(set(resolutions), key=lambda v: (resolutions.count(v), -(v or 0)))
    chosen: dict[tuple, Any] = {}
    for r in records:
        prov = provenance_of(r)
        key = (prov.get("model"), prov.get("backbone"))
        if prov.get("resolution") == common and key not in chosen and not is_reported(r):
            chosen[key] = r
    return sorted(chosen.values(), key=lambda r: (provenance_of(r).get("model") != "segface", record_label(r)))


def _setting(record: Any) -> tuple:
    prov = provenance_of(record)
    return tuple(prov.get(k) for k in ("model", "backbone", "resolution", "dataset", "split", "protocol"))


def repeated_settings(records: Sequence[Any], main: Sequence[Any]) -> list[list[Any]]:
    """For each record of ``main`` (:func:`main_records`) that shares its setting (model, backbone, resolution,
    dataset, split, protocol) with other plain records of ours (repeated runs, other seeds): that record
    first, then the others."""
    ours = [r for r in records if is_plain(r) and not is_reported(r)]
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
            "label": record_label(r), "model": provenance_of(r).get("model"), "mean_f1": r.mean_f1,
            "ci": mean_f1_ci(r), "mean_iou_with_bg": r.mean_iou_with_bg, "head": head, "tail": tail,
            "tail_classes": {taxonomy[i].display: f1.get(i) for i in taxonomy.accessory_ids},
            "f1_by_bin": r.f1_by_bin, "num_params": provenance_of(r).get("num_params"),
        })
    return out
