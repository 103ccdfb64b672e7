"""Score any parser's saved label PNGs against ground-truth label PNGs (``lt-faceparse score``).

Files are matched by their path relative to each folder without the extension (``a/123.png`` in
the prediction folder scores against ``a/123.png`` in the ground-truth folder). Missing or extra
files, size mismatches and ids outside the numbering are errors naming the file. Predictions are
scored at the ground-truth files' resolution (``native`` protocol).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from rich.progress import track

from lt_faceparse.data.base import read_id_png
from lt_faceparse.errors import DataError
from lt_faceparse.metrics.confusion import ConfusionMatrix
from lt_faceparse.records import ResultRecord, build_record
from lt_faceparse.taxonomy import Taxonomy
from lt_faceparse.weights import resolve_taxonomy

LABEL_SUFFIXES = (".png",)


def _label_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES:
            key = p.relative_to(folder).with_suffix("").as_posix()
            if key in files:
                raise DataError(p, f"two label files share the name {key!r} ({files[key].name})")
            files[key] = p
    if not files:
        raise DataError(folder, f"no label files ({', '.join(LABEL_SUFFIXES)}) found")
    return files


def match_files(gt_dir: str | Path, pred_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """``(name, gt_path, pred_path)`` for every ground-truth file, sorted by name."""
    gt, pred = _label_files(Path(gt_dir)), _label_files(Path(pred_dir))
    missing = sorted(set(gt) - set(pred))
    if missing:
        raise DataError(Path(pred_dir) / f"{missing[0]}.png",
                        f"prediction missing for ground truth {gt[missing[0]]} ({len(missing)} missing in all)")
    extra = sorted(set(pred) - set(gt))
    if extra:
        raise DataError(pred[extra[0]], f"prediction has no ground truth in {gt_dir} ({len(extra)} extra files in all)")
    return [(k, gt[k], pred[k]) for k in sorted(gt)]


def _read_ids(path: Path, lut: np.ndarray, numbering: str, taxonomy: Taxonomy, allow_ignore: bool) -> np.ndarray:
    raw = read_id_png(path)
    ids = lut[raw]
    unknown = (ids == taxonomy.ignore_index) & ((raw != taxonomy.ignore_index) | (not allow_ignore))
    if unknown.any():
        bad = np.unique(raw[unknown]).tolist()[:10]
        raise DataError(path, f"ids {bad} are not classes of taxonomy {taxonomy.name!r} in numbering "
                              f"{numbering!r}" + ("" if allow_ignore else " (predictions may not hold 255)"))
    return ids


def score_prediction_folders(gt_dir: str | Path, pred_dir: str | Path, taxonomy: Taxonomy | str, *,
                             numbering: str = "ours", gt_numbering: str = "ours",
                             provenance: Mapping[str, Any] | None = None, bins: Any = None) -> ResultRecord:
    """Score the label PNGs in ``pred_dir`` (ids in ``numbering``) against those in ``gt_dir`` (ids in
    ``gt_numbering``, 255 = ignore) and return a result record with per-image stats. ``taxonomy``:
    a name, a weight file, a folder dataset root or its ``classes.txt``
    (:func:`lt_faceparse.weights.resolve_taxonomy`)."""
    taxonomy = resolve_taxonomy(taxonomy)
    pairs = match_files(gt_dir, pred_dir)
    pred_lut, gt_lut = taxonomy.lut_from(numbering), taxonomy.lut_from(gt_numbering)
    metric = ConfusionMatrix(taxonomy.num_classes, ignore_index=taxonomy.ignore_index)
    for i, (name, gt_path, pred_path) in enumerate(track(pairs, description="scoring predictions",
                                                         disable=not sys.stderr.isatty(), transient=True)):
        gt = _read_ids(gt_path, gt_lut, gt_numbering, taxonomy, allow_ignore=True)
        pred = _read_ids(pred_path, pred_lut, numbering, taxonomy, allow_ignore=False)
        if gt.shape != pred.shape:
            raise DataError(pred_path, f"prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth "
                                       f"{gt_path} is {gt.shape[1]}x{gt.shape[0]}")
        metric.update(torch.from_numpy(pred)[None].long(), torch.from_numpy(gt)[None].long(),
                      image_ids=torch.tensor([i]))
    prov = {"protocol": "native", "protocol_description": "saved label PNGs scored at the ground-truth files' "
            "resolution", "weights": str(pred_dir), "gt_dir": str(gt_dir), "pred_numbering": numbering,
            "gt_numbering": gt_numbering, **dict(provenance or {})}
    return build_record(metric, taxonomy, prov, bins=bins, names=[name for name, _, _ in pairs])
