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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from lt_faceparse.analysis.bins import BIN_NAMES, assign_bins, check_thresholds
from lt_faceparse.analysis.frequency_counts import (LabelCounts, count_celebamask, count_datasets, load_shards,
                                                    save_shard)
from lt_faceparse.analysis.gini import gini
from lt_faceparse.analysis.plots import load_figure_libraries, plot_class_frequencies, plot_preset_comparison
from lt_faceparse.analysis.table_csv import columns_to_csv, read_csv_columns
from lt_faceparse.atomic import FIGURE_FORMATS, atomic_folder, atomic_write_json, atomic_write_text
from lt_faceparse.custom_taxonomy import adopt_taxonomy, taxonomy_from_names
from lt_faceparse import data as datasets  # its dataset classes (and torch) load on first use (PEP 562)
from lt_faceparse.data.chunk_pool import map_chunks
from lt_faceparse.data.registry import dataset_key
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

if TYPE_CHECKING:
    import pandas as pd

FREQUENCY_COLUMNS = ("class_id", "class_name", "images_with_class", "presence_prob", "pixel_count",
                     "pixel_share", "mean_area_when_present", "bin")
SPLITS = ("train", "val", "test")


@dataclass
class FrequencyTable:
    """``columns``: one row per class (columns :data:`FREQUENCY_COLUMNS`, then ``display_name``,
    ``kind``; numpy arrays); ``summary``: ``num_images, gini_image, gini_pixel, merge, split,
    dataset`` and more; ``image_presence``: N x K bool, which classes each image contains (rows in
    the order the images were read; None for a table read back from files)."""

    columns: dict[str, np.ndarray]
    summary: dict[str, Any]
    taxonomy: Taxonomy
    image_presence: np.ndarray | None = None

    @property
    def frame(self) -> "pd.DataFrame":
        """The columns as a pandas DataFrame (pandas loads on first use)."""
        import pandas as pd  # lazy: ``freq`` itself never needs pandas

        return pd.DataFrame({k: v.tolist() if v.dtype == object else v for k, v in self.columns.items()})

    def bins(self) -> dict[str, list[str]]:
        """``{bin: [class names]}`` (every bin listed, possibly empty)."""
        names, bins = self.columns["class_name"].tolist(), self.columns["bin"].tolist()
        return {b: [n for n, nb in zip(names, bins) if nb == b] for b in BIN_NAMES}

    def presence(self) -> dict[str, float]:
        return dict(zip(self.columns["class_name"].tolist(), self.columns["presence_prob"].tolist()))

    @classmethod
    def read(cls, out_dir: str | Path) -> "FrequencyTable":
        """Load a report written by :func:`write_frequency_report`."""
        out_dir = Path(out_dir)
        csv, js = out_dir / "class_frequencies.csv", out_dir / "summary.json"
        for p in (csv, js):
            if not p.is_file():
                raise DataError(p, "frequency report file not found")
        columns = read_csv_columns(csv, ints=_INT_COLUMNS, floats=_FLOAT_COLUMNS)
        missing = [c for c in FREQUENCY_COLUMNS if c not in columns]
        if missing:
            raise DataError(csv, f"missing columns {missing}")
        try:
            summary = json.loads(js.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(js, f"not valid JSON: {err}") from err
        if summary.get("taxonomy_definition") is not None:
            taxonomy = adopt_taxonomy(summary["taxonomy_definition"], js)
        else:  # reports written before summaries held their taxonomy
            taxonomy = _taxonomy_from_columns(summary["taxonomy"], columns)
        if taxonomy.names != columns["class_name"].tolist():
            raise DataError(csv, f"class names differ from taxonomy {taxonomy.name!r}: {taxonomy.names}")
        columns.setdefault("display_name", _text(taxonomy.display_names))  # reports written before these
        columns.setdefault("kind", _text(c.kind for c in taxonomy.classes))
        return cls(columns, summary, taxonomy)


_INT_COLUMNS = ("class_id", "images_with_class", "pixel_count")
_FLOAT_COLUMNS = ("presence_prob", "pixel_share", "mean_area_when_present")


def _taxonomy_from_columns(name: str, columns: Mapping[str, np.ndarray]) -> Taxonomy:
    """The registered taxonomy ``name``, else one rebuilt from the table's names, display names and kinds."""
    try:
        return get_taxonomy(name)
    except KeyError:  # a user-defined taxonomy that is not registered in this process
        extra = {c: columns[c].tolist() for c in ("display_name", "kind") if c in columns}
        return taxonomy_from_names(name, columns["class_name"].tolist(), display_names=extra.get("display_name"),
                                   kinds=extra.get("kind"))


def _datasets(dataset: Any) -> list[Any]:
    return list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]


def compute_class_frequencies(dataset: Any, num_workers: int = 0, *,
                              thresholds: Mapping[str, float] | None = None) -> FrequencyTable:
    """Read every label map of ``dataset`` (or of a list of datasets sharing one taxonomy, e.g. all
    splits; ``num_workers`` processes, chunks of images each) and tabulate class frequencies."""
    datasets = _datasets(dataset)
    if not datasets:
        raise ValueError("compute_class_frequencies: no dataset given")
    taxonomy = datasets[0].taxonomy
    if any(d.taxonomy.name != taxonomy.name for d in datasets):
        raise ValueError("compute_class_frequencies: datasets use different taxonomies")
    counts = count_datasets(datasets, num_workers)
    summary = dict(counts.settings, merge=counts.settings["merges"])
    return table_from_histograms(counts.histograms[:, 0], taxonomy, summary, thresholds, counts.describe)


def table_from_histograms(histograms: np.ndarray, taxonomy: Taxonomy, settings: Mapping[str, Any],
                          thresholds: Mapping[str, float] | None = None,
                          describe: Callable[[int], str] | None = None) -> FrequencyTable:
    """The frequency table of N label maps given as N x 256 histograms of their ids (rows in reading
    order). ``settings``: ``dataset``, ``dataset_format``, ``root``, ``split``, ``splits`` and
    ``merge`` (a name, or the list of the datasets' merges) for the summary; ``describe(row)`` names
    an image in errors. Ids between K and 254 are an error naming the first image holding one."""
    thresholds = check_thresholds(thresholds)
    k = taxonomy.num_classes
    hist = np.asarray(histograms, dtype=np.int64).reshape(-1, 256)
    bad = np.flatnonzero(hist[:, k:255].any(axis=1))
    if bad.size:
        where = describe(int(bad[0])) if describe is not None else f"{settings.get('root')} #{int(bad[0])}"
        raise DataError(where, f"label holds ids {(np.flatnonzero(hist[bad[0], k:255]) + k).tolist()} outside "
                               f"taxonomy {taxonomy.name!r} (0..{k - 1}, 255 = ignore)")
    num_images = hist.shape[0]
    if num_images == 0:
        raise DataError(settings.get("root"), "no images to analyse")
    counts = hist[:, :k]
    valid = counts.sum(axis=1)
    present = counts > 0
    images_with = present.sum(axis=0, dtype=np.int64)
    pixels = counts.sum(axis=0)
    area = np.zeros(counts.shape, dtype=np.float64)
    area[valid > 0] = counts[valid > 0] / valid[valid > 0, None]
    # image after image (add.accumulate is sequential), the same float sums as a loop over images
    area_sum = np.add.accumulate(area, axis=0)[-1]
    presence = images_with / num_images
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_area = np.where(images_with > 0, area_sum / np.maximum(images_with, 1), np.nan)
    share = pixels / pixels.sum() if pixels.sum() else np.zeros(k)
    columns = {
        "class_id": np.arange(k, dtype=np.int64), "class_name": _text(taxonomy.names),
        "images_with_class": images_with, "presence_prob": presence, "pixel_count": pixels, "pixel_share": share,
        "mean_area_when_present": mean_area, "bin": _text(assign_bins(presence, thresholds)),
        "display_name": _text(taxonomy.display_names), "kind": _text(c.kind for c in taxonomy.classes),
    }
    fg = taxonomy.foreground_ids
    merges = settings["merge"]
    if isinstance(merges, list):
        merges = merges[0] if len(set(map(str, merges))) == 1 else sorted(set(map(str, merges)))
    summary = {
        "num_images": int(num_images),
        "gini_image": gini(presence[fg]),
        "gini_pixel": gini(pixels[fg]),
        "merge": merges,
        "split": settings["split"],
        "splits": list(settings["splits"]),
        "dataset": settings["dataset"],
        "data_format": settings["dataset_format"],
        "root": settings["root"],
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
    return FrequencyTable(columns, summary, taxonomy, present)


def _text(values: Any) -> np.ndarray:
    return np.array(list(values), dtype=object)


def _write_tables(table: FrequencyTable, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {"csv": atomic_write_text(out_dir / "class_frequencies.csv", columns_to_csv(table.columns)),
            "summary": atomic_write_json(out_dir / "summary.json", table.summary)}


def write_frequency_report(table: FrequencyTable, out_dir: str | Path, log_scale: bool = False) -> dict[str, Path]:
    """Write ``class_frequencies.csv``, ``summary.json`` and the Figure-1-style plot (PNG + PDF)."""
    paths = _write_tables(table, Path(out_dir))
    for p in plot_class_frequencies(table, Path(out_dir) / "class_frequencies", log_scale=log_scale):
        paths[p.suffix.lstrip(".")] = p
    return paths


def _write_comparison_table(tables: Mapping[str, FrequencyTable], out_dir: Path) -> Path:
    first = next(iter(tables.values())).columns
    comp = {"class_id": first["class_id"], "class_name": first["class_name"]}
    for preset, t in tables.items():
        for column in ("presence_prob", "pixel_share", "bin"):
            comp[f"{column}[{preset}]"] = t.columns[column]
    return atomic_write_text(out_dir / "merge_comparison.csv", columns_to_csv(comp))


def _open_splits(dataset_name: str, root: str | Path, split: str, merge: str | Sequence[str]) -> list[Any]:
    """The datasets of ``split`` (``all`` = every split, a split identical to an earlier one, such
    as Helen's val = test, is read once)."""
    if split != "all":
        return [datasets.build_dataset(dataset_name, root, split, resolution=None, merge=merge)]
    out, seen = [], []
    for s in SPLITS:
        ds = datasets.build_dataset(dataset_name, root, s, resolution=None, merge=merge)
        if sorted(ds.names) in seen:
            continue
        seen.append(sorted(ds.names))
        out.append(ds)
    return out


def count_labels(dataset_name: str, root: str | Path, split: str, merges: Sequence[str], num_workers: int = 0, *,
                 shard: tuple[int, int] | None = None,
                 while_running: Callable[[], None] | None = None) -> LabelCounts:
    """:class:`~lt_faceparse.analysis.frequency_counts.LabelCounts` of ``split`` for every preset of
    ``merges`` in one pass (CelebAMask-HQ; other datasets take one preset at most)."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {[*SPLITS, 'all']}, got {split!r}")
    if dataset_key(dataset_name) == "celebamask-hq":
        return count_celebamask(root, split, merges, num_workers, shard=shard, while_running=while_running)
    if len(merges) > 1:
        raise ValueError(f"dataset {dataset_name!r} has no merge presets; pass at most one --merge")
    counts = count_datasets(_open_splits(dataset_name, root, split, merges[0]), num_workers, shard=shard)
    counts.settings["presets"] = list(merges)  # the report's folder and key, as asked
    return counts


def _draw(job: tuple) -> list[Path]:
    """One figure of a report (in the formats of the job): a preset's, or the side-by-side comparison."""
    kind, data, stem, log_scale, formats = job
    plot = plot_preset_comparison if kind == "comparison" else plot_class_frequencies
    return plot(data, stem, log_scale=log_scale, formats=formats)


def _figure_jobs(figures: list[tuple[str, Any, Path]], log_scale: bool, num_workers: int) -> list[tuple]:
    """One job per figure, the costliest (the comparison) first; with more processes than figures,
    one job per figure and format (each process lays the figure out again, and PNG and PDF are drawn
    at once)."""
    jobs = [(kind, data, stem, log_scale, FIGURE_FORMATS) for kind, data, stem in figures]
    if len(jobs) < num_workers:
        jobs = [(*job[:4], (fmt,)) for job in jobs for fmt in FIGURE_FORMATS]
    return jobs


def report_from_counts(counts: LabelCounts, out_dir: str | Path, *, log_scale: bool = False,
                       thresholds: Mapping[str, float] | None = None,
                       num_workers: int = 0) -> dict[str, FrequencyTable]:
    """Write one report per preset of ``counts`` (in ``OUT/<preset>/`` when several, plus a side-by-side
    comparison in ``OUT``; several figures are drawn by ``num_workers`` processes) and complete the
    label caches' manifests; returns the tables by preset."""
    taxonomy = get_taxonomy(counts.settings["taxonomy"])
    presets = counts.settings["presets"]
    tables = {}
    for j, preset in enumerate(presets):
        settings = dict(counts.settings, merge=preset if counts.settings["dataset_format"] == "celebamask-hq"
                        else counts.settings["merges"])
        tables[str(preset)] = table_from_histograms(counts.histograms[:, j], taxonomy, settings, thresholds,
                                                    counts.describe)
    counts.write_cache_manifests()
    several = len(presets) > 1
    with atomic_folder(out_dir) as tmp:  # the report's files change together (a full disk leaves the old ones)
        figures = [("comparison", tables, tmp / "merge_comparison")] if several else []
        if several:
            _write_comparison_table(tables, tmp)
        for preset, table in tables.items():
            folder = tmp / preset if several else tmp
            _write_tables(table, folder)
            figures.append(("report", table, folder / "class_frequencies"))
        for _ in map_chunks(_draw, _figure_jobs(figures, log_scale, num_workers), num_workers):
            pass
    return tables


def frequency_report(dataset_name: str, root: str | Path, split: str, out_dir: str | Path, *,
                     merges: Sequence[str] | None = None, log_scale: bool = False, num_workers: int = 0,
                     thresholds: Mapping[str, float] | None = None) -> dict[str, FrequencyTable]:
    """The ``freq`` command: one pass over ``split`` for every merge preset, then one report per preset
    (:func:`report_from_counts`); returns the tables by preset."""
    counts = count_labels(dataset_name, root, split, list(merges or ["segface"]), num_workers,
                          while_running=load_figure_libraries)  # while the workers decode
    return report_from_counts(counts, out_dir, log_scale=log_scale, thresholds=check_thresholds(thresholds),
                              num_workers=num_workers)


def frequency_shard(dataset_name: str, root: str | Path, split: str, out_dir: str | Path, shard: tuple[int, int], *,
                    merges: Sequence[str] | None = None, log_scale: bool = False, num_workers: int = 0,
                    thresholds: Mapping[str, float] | None = None) -> Path:
    """``freq --shard i/n``: count block ``i`` of ``n`` of the run :func:`frequency_report` would make,
    into ``OUT/shard-i-of-n.npz`` (returned), for :func:`merge_shards`."""
    counts = count_labels(dataset_name, root, split, list(merges or ["segface"]), num_workers, shard=shard)
    return save_shard(counts, out_dir, shard, {"thresholds": check_thresholds(thresholds), "log_scale": log_scale})


def merge_shards(paths: Sequence[str | Path], out_dir: str | Path, num_workers: int = 0) -> dict[str, FrequencyTable]:
    """The report of a run counted in shards (``freq --shard i/n``): the files (or folders holding
    them) of all ``n`` shards are joined, then reported as one unsharded run would be."""
    counts, extra = load_shards(paths)
    return report_from_counts(counts, out_dir, log_scale=extra.get("log_scale", False),
                              thresholds=extra.get("thresholds"), num_workers=num_workers)
