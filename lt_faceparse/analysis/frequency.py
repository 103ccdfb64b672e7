"""Class-frequency analysis: how long-tailed is a face-parsing dataset (per split, per merge preset)?

Per class: images containing it, presence probability (share of images containing it), pixel count,
pixel share (of all labelled pixels), mean area when present (fraction of the image's labelled pixels,
averaged over the images that contain the class) and a rare/common/frequent bin
(:mod:`lt_faceparse.analysis.bins`). Per dataset: number of images and the Gini coefficient of the
foreground classes' presence probabilities and of their pixel counts. Pixels labelled 255 (ignore)
count nowhere.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from rich.progress import Progress

from lt_faceparse.analysis.bins import BIN_NAMES, assign_bins, check_thresholds
from lt_faceparse.analysis.gini import gini
from lt_faceparse.analysis.plots import plot_class_frequencies, plot_preset_comparison
from lt_faceparse.atomic import atomic_folder, atomic_write_json, atomic_write_text
from lt_faceparse.custom_taxonomy import adopt_taxonomy, taxonomy_from_names
from lt_faceparse.data import build_dataset, iter_labels
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

FREQUENCY_COLUMNS = ("class_id", "class_name", "images_with_class", "presence_prob", "pixel_count",
                     "pixel_share", "mean_area_when_present", "bin")
SPLITS = ("train", "val", "test")


@dataclass
class FrequencyTable:
    """``frame``: one row per class (columns :data:`FREQUENCY_COLUMNS`, then ``display_name``,
    ``kind``); ``summary``: ``num_images, gini_image, gini_pixel, merge, split, dataset`` and more;
    ``image_presence``: N x K bool, which classes each image contains (rows in the order the images
    were read; None for a table read back from files)."""

    frame: pd.DataFrame
    summary: dict[str, Any]
    taxonomy: Taxonomy
    image_presence: np.ndarray | None = None

    def bins(self) -> dict[str, list[str]]:
        """``{bin: [class names]}`` (every bin listed, possibly empty)."""
        return {b: self.frame.loc[self.frame["bin"] == b, "class_name"].tolist() for b in BIN_NAMES}

    def presence(self) -> dict[str, float]:
        return dict(zip(self.frame["class_name"], self.frame["presence_prob"]))

    @classmethod
    def read(cls, out_dir: str | Path) -> "FrequencyTable":
        """Load a report written by :func:`write_frequency_report`."""
        out_dir = Path(out_dir)
        csv, js = out_dir / "class_frequencies.csv", out_dir / "summary.json"
        for p in (csv, js):
            if not p.is_file():
                raise DataError(p, "frequency report file not found")
        frame = pd.read_csv(csv)
        missing = [c for c in FREQUENCY_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(csv, f"missing columns {missing}")
        try:
            summary = json.loads(js.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(js, f"not valid JSON: {err}") from err
        if summary.get("taxonomy_definition") is not None:
            taxonomy = adopt_taxonomy(summary["taxonomy_definition"], js)
        else:  # reports written before summaries held their taxonomy
            taxonomy = _taxonomy_from_frame(summary["taxonomy"], frame)
        if taxonomy.names != frame["class_name"].tolist():
            raise DataError(csv, f"class names differ from taxonomy {taxonomy.name!r}: {taxonomy.names}")
        return cls(frame, summary, taxonomy)


def _taxonomy_from_frame(name: str, frame: pd.DataFrame) -> Taxonomy:
    """The registered taxonomy ``name``, else one rebuilt from the table's names, display names and kinds."""
    try:
        return get_taxonomy(name)
    except KeyError:  # a user-defined taxonomy that is not registered in this process

        columns = {c: frame[c].tolist() for c in ("display_name", "kind") if c in frame}
        return taxonomy_from_names(name, frame["class_name"].tolist(), display_names=columns.get("display_name"),
                                   kinds=columns.get("kind"))


def _datasets(dataset: Any) -> list[Any]:
    return list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]


def compute_class_frequencies(dataset: Any, num_workers: int = 0, *,
                              thresholds: Mapping[str, float] | None = None) -> FrequencyTable:
    """Stream every label map of ``dataset`` (or of a list of datasets sharing one taxonomy, e.g. all
    splits) with :func:`lt_faceparse.data.iter_labels` and tabulate class frequencies."""
    datasets = _datasets(dataset)
    if not datasets:
        raise ValueError("compute_class_frequencies: no dataset given")
    taxonomy = datasets[0].taxonomy
    if any(d.taxonomy.name != taxonomy.name for d in datasets):
        raise ValueError("compute_class_frequencies: datasets use different taxonomies")
    thresholds = check_thresholds(thresholds)
    k = taxonomy.num_classes
    images_with = np.zeros(k, dtype=np.int64)
    pixels = np.zeros(k, dtype=np.int64)
    area_sum = np.zeros(k, dtype=np.float64)
    presence_rows: list[np.ndarray] = []
    num_images = 0
    total = sum(len(d) for d in datasets)
    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        task = progress.add_task(f"class frequencies ({taxonomy.name})", total=total)
        for ds in datasets:
            for index, label in iter_labels(ds, num_workers=num_workers):
                counts = np.bincount(np.asarray(label).ravel(), minlength=256)
                unknown = np.flatnonzero(counts[k:255]) + k
                if unknown.size:
                    where = ds.describe_item(index) if hasattr(ds, "describe_item") else f"{ds.root} #{index}"
                    raise DataError(where, f"label holds ids {unknown.tolist()} outside taxonomy "
                                           f"{taxonomy.name!r} (0..{k - 1}, 255 = ignore)")
                counts = counts[:k]
                valid = counts.sum()
                images_with += counts > 0
                presence_rows.append(counts > 0)
                pixels += counts
                if valid:
                    area_sum += counts / valid
                num_images += 1
                progress.advance(task)
    if num_images == 0:
        raise DataError(getattr(datasets[0], "root", None), "no images to analyse")

    presence = images_with / num_images
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_area = np.where(images_with > 0, area_sum / np.maximum(images_with, 1), np.nan)
    share = pixels / pixels.sum() if pixels.sum() else np.zeros(k)
    frame = pd.DataFrame({
        "class_id": np.arange(k), "class_name": taxonomy.names, "images_with_class": images_with,
        "presence_prob": presence, "pixel_count": pixels, "pixel_share": share,
        "mean_area_when_present": mean_area, "bin": assign_bins(presence, thresholds),
        "display_name": taxonomy.display_names, "kind": [c.kind for c in taxonomy.classes],
    })
    fg = taxonomy.foreground_ids
    splits = [d.split for d in datasets]
    merges = {d.merge for d in datasets}
    summary = {
        "num_images": int(num_images),
        "gini_image": gini(presence[fg]),
        "gini_pixel": gini(pixels[fg]),
        "merge": merges.pop() if len(merges) == 1 else sorted(map(str, merges)),
        "split": splits[0] if len(splits) == 1 else "all",
        "splits": splits,
        "dataset": getattr(datasets[0], "source_dataset", datasets[0].dataset_name),
        "data_format": datasets[0].dataset_name,
        "root": str(datasets[0].root) if getattr(datasets[0], "root", None) is not None else None,
        "taxonomy": taxonomy.name,
        "taxonomy_definition": taxonomy.to_dict(),
        "thresholds": thresholds,
        "num_pixels": int(pixels.sum()),
        "gini_over": "foreground classes (background excluded); gini_image over presence probabilities, "
                     "gini_pixel over pixel counts",
        "area_definition": "mean_area_when_present = mean over images containing the class of "
                           "(its pixels / the image's non-ignored pixels)",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return FrequencyTable(frame, summary, taxonomy, np.stack(presence_rows))


def write_frequency_report(table: FrequencyTable, out_dir: str | Path, log_scale: bool = False) -> dict[str, Path]:
    """Write ``class_frequencies.csv``, ``summary.json`` and the Figure-1-style plot (PNG + PDF)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": atomic_write_text(out_dir / "class_frequencies.csv", table.frame.to_csv(index=False)),
        "summary": atomic_write_json(out_dir / "summary.json", table.summary),
    }
    for p in plot_class_frequencies(table, out_dir / "class_frequencies", log_scale=log_scale):
        paths[p.suffix.lstrip(".")] = p
    return paths


def compare_presets(tables: Mapping[str, FrequencyTable], out_dir: str | Path, log_scale: bool = False) -> dict[str, Path]:
    """Side-by-side presence/pixel share/bin per merge preset: ``merge_comparison.csv`` + plot."""
    out_dir = Path(out_dir)
    first = next(iter(tables.values()))
    comp = first.frame[["class_id", "class_name"]].copy()
    for preset, t in tables.items():
        comp[f"presence_prob[{preset}]"] = t.frame["presence_prob"].to_numpy()
        comp[f"pixel_share[{preset}]"] = t.frame["pixel_share"].to_numpy()
        comp[f"bin[{preset}]"] = t.frame["bin"].to_numpy()
    paths = {"csv": atomic_write_text(out_dir / "merge_comparison.csv", comp.to_csv(index=False))}
    for p in plot_preset_comparison(tables, out_dir / "merge_comparison", log_scale=log_scale):
        paths[p.suffix.lstrip(".")] = p
    return paths


def _open_splits(dataset_name: str, root: str | Path, split: str, merge: str | Sequence[str]) -> list[Any]:
    """The datasets of ``split`` (``all`` = every split, a split identical to an earlier one, such
    as Helen's val = test, is read once)."""
    if split != "all":
        return [build_dataset(dataset_name, root, split, resolution=None, merge=merge)]
    out, seen = [], []
    for s in SPLITS:
        ds = build_dataset(dataset_name, root, s, resolution=None, merge=merge)
        if sorted(ds.names) in seen:
            continue
        seen.append(sorted(ds.names))
        out.append(ds)
    return out


def frequency_report(dataset_name: str, root: str | Path, split: str, out_dir: str | Path, *,
                     merges: Sequence[str] | None = None, log_scale: bool = False, num_workers: int = 0,
                     thresholds: Mapping[str, float] | None = None) -> dict[str, FrequencyTable]:
    """The ``freq`` command: one report per merge preset (in ``OUT/<preset>/`` when several, plus a
    side-by-side comparison in ``OUT``); returns the tables by preset."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {[*SPLITS, 'all']}, got {split!r}")
    merges = list(merges or ["segface"])
    tables = {}
    for preset in merges:
        table = compute_class_frequencies(_open_splits(dataset_name, root, split, preset), num_workers,
                                          thresholds=thresholds)
        if len(merges) > 1 and table.summary["merge"] is None:
            raise ValueError(f"dataset {dataset_name!r} has no merge presets; pass at most one --merge")
        tables[preset] = table
    with atomic_folder(out_dir) as tmp:  # the report's files change together (a full disk leaves the old ones)
        for preset, table in tables.items():
            write_frequency_report(table, tmp / preset if len(merges) > 1 else tmp, log_scale)
        if len(merges) > 1:
            compare_presets(tables, tmp, log_scale)
    return tables
