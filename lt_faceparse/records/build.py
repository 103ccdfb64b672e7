"""Building records: from a confusion matrix (:func:`build_record`) or published numbers
(:func:`reported_record`)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from lt_faceparse.analysis.bins import f1_by_bin
from lt_faceparse.metrics.confusion import ConfusionMatrix
from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.metrics.scores import CONVENTIONS, counts_from_confusion, scores_from_counts
from lt_faceparse.records.provenance import Provenance, make_provenance
from lt_faceparse.records.record import MEAN_KEYS as _MEAN_KEYS
from lt_faceparse.records.record import ResultRecord, _bins_arg
from lt_faceparse.records.validate import validate_record_dict
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy


def build_record(confusion: Any, taxonomy: Taxonomy | str, provenance: Mapping[str, Any] | Provenance | None,
                 per_image: PerImageStats | None = None, bins: Any = None, *, ci: Any = None,
                 num_images: int | None = None, names: Sequence[str] | None = None) -> ResultRecord:
    """Score a K x K confusion matrix (tensor, array or a computed ``ConfusionMatrix`` metric) into a
    record. ``per_image``: stats from ``ConfusionMatrix.per_image_stats()`` (``names``: image names
    in their row order); ``bins``: ``{bin: [class names or ids]}`` or a ``FrequencyTable``; ``ci``: a
    ``BootstrapCI`` or its dict. ``num_images`` defaults to the number of per-image rows."""
    taxonomy = get_taxonomy(taxonomy)
    if isinstance(confusion, ConfusionMatrix):
        if per_image is None and confusion.per_image:
            per_image = confusion.per_image_stats()
        confusion = confusion.compute()
    gt, pred, inter = counts_from_confusion(confusion)
    scores = scores_from_counts(gt, pred, inter, taxonomy)
    if per_image is not None:
        if names is not None:
            per_image = per_image.with_names(names)
        if not (np.array_equal(per_image.gt.sum(0), gt) and np.array_equal(per_image.pred.sum(0), pred)
                and np.array_equal(per_image.inter.sum(0), inter)):
            raise ValueError("build_record: per-image stats do not add up to the confusion matrix")
        num_images = per_image.num_images if num_images is None else num_images
        if num_images != per_image.num_images:
            raise ValueError(f"build_record: num_images={num_images} but {per_image.num_images} per-image rows")
    if num_images is None:
        raise ValueError("build_record: pass num_images (or per_image)")
    bin_map, bins_source = _bins_arg(bins, taxonomy)
    fg = [taxonomy.names[i] for i in taxonomy.foreground_ids]
    f1s = {c["name"]: c["f1"] for c in scores["per_class"]}
    if ci is not None and hasattr(ci, "to_dict"):
        ci = ci.to_dict()
    cm = np.asarray(confusion.detach().cpu() if hasattr(confusion, "detach") else confusion, dtype=np.int64)
    record = ResultRecord(
        taxonomy=taxonomy.name, per_class=scores["per_class"],
        **{k: scores[k] for k in _MEAN_KEYS}, num_images=int(num_images),
        provenance=make_provenance(provenance, taxonomy.name), groups=scores["groups"],
        undefined_classes=scores["undefined_classes"], bins=bin_map, bins_source=bins_source,
        f1_by_bin=None if bin_map is None else f1_by_bin(f1s, bin_map, fg), confusion=cm.tolist(),
        ci=ci, taxonomy_definition=taxonomy.to_dict(), conventions=scores["conventions"], _per_image=per_image,
    )
    validate_record_dict(record.to_dict(), "<built record>")
    return record


def reported_record(method: str, per_class_f1: Mapping[str, float | None], mean_f1: float | None,
                    mean_iou: float | None, provenance: Mapping[str, Any] | Provenance | None, *,
                    taxonomy: Taxonomy | str | None = None, mean_iou_convention: str = "with_bg",
                    num_images: int | None = None, bins: Any = None) -> ResultRecord:
    """A record of published numbers (fractions, not percent). ``per_class_f1`` maps class names or
    display names (e.g. ``"L-Eye"``) to F1; classes not listed stay NaN. ``mean_iou`` is stored under
    the convention the source used (``with_bg`` as SegFace and DML-CSR, or ``without_bg``). Means are
    kept as printed (not recomputed from the rounded per-class values)."""
    prov = provenance.to_dict() if isinstance(provenance, Provenance) else dict(provenance or {})
    taxonomy = get_taxonomy(taxonomy if taxonomy is not None else prov.get("taxonomy"))
    if mean_iou_convention not in ("with_bg", "without_bg"):
        raise ValueError(f"mean_iou_convention must be 'with_bg' or 'without_bg', got {mean_iou_convention!r}")
    f1 = [math.nan] * taxonomy.num_classes
    for name, value in per_class_f1.items():
        cid = taxonomy.id_of(name)
        f1[cid] = math.nan if value is None else float(value)
    for what, v in [*((f"F1 of {taxonomy.names[i]}", x) for i, x in enumerate(f1)),
                    ("mean F1", mean_f1), ("mean IoU", mean_iou)]:
        if v is not None and not math.isnan(v) and not 0.0 <= v <= 1.0:
            raise ValueError(f"reported_record({method!r}): {what} = {v} is not a fraction in [0, 1] "
                             "(records store fractions; divide percent by 100)")
    prov.setdefault("model", method)
    prov["reported"] = True
    nan = math.nan
    per_class = [{"id": i, "name": n, "f1": f1[i], "iou": nan, "precision": nan, "recall": nan,
                  "gt_pixels": None, "pred_pixels": None, "intersection": None}
                 for i, n in enumerate(taxonomy.names)]
    bin_map, bins_source = _bins_arg(bins, taxonomy)
    fg = [taxonomy.names[i] for i in taxonomy.foreground_ids]
    iou = nan if mean_iou is None else float(mean_iou)
    record = ResultRecord(
        taxonomy=taxonomy.name, per_class=per_class,
        mean_f1=nan if mean_f1 is None else float(mean_f1),
        mean_iou_with_bg=iou if mean_iou_convention == "with_bg" else nan,
        mean_iou_without_bg=iou if mean_iou_convention == "without_bg" else nan,
        pixel_accuracy=nan, num_images=num_images,
        provenance=make_provenance(prov, taxonomy.name, reported=True), bins=bin_map, bins_source=bins_source,
        f1_by_bin=None if bin_map is None else f1_by_bin({n: f1[i] for i, n in enumerate(taxonomy.names)}, bin_map, fg),
        taxonomy_definition=taxonomy.to_dict(),
        conventions={**CONVENTIONS, "source": "published numbers as printed by the cited source"},
    )
    validate_record_dict(record.to_dict(), "<reported record>")
    return record
