"""Scores from pixel counts: per-class precision, recall, F1, IoU; means; pixel accuracy; groups.

Conventions (stated in every record under ``conventions``):
- counts are pooled over the split (one confusion matrix), never averaged over images;
- F1 = 2|G∩P| / (|G| + |P|), IoU = |G∩P| / (|G| + |P| - |G∩P|), precision = |G∩P| / |P|,
  recall = |G∩P| / |G|;
- a class absent from both ground truth and prediction is undefined (NaN), listed in
  ``undefined_classes`` and left out of every mean (never scored 1.0); a class present on only one
  side scores 0 (precision of a never-predicted class and recall of a class absent from the ground
  truth are 0, as torchmetrics' ``zero_division=0``);
- mean F1 is over the foreground (non-background) classes, as SegFace, DML-CSR and FaRL print it;
- mean IoU is given in both conventions: with background (SegFace's release, DML-CSR) and without;
- groups (e.g. Helen's eyes, brows, mouth, overall) pool the member classes' counts, then score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

CONVENTIONS = {
    "aggregation": "pixel counts pooled over the split (one confusion matrix), not a mean of per-image scores",
    "f1": "2|G∩P| / (|G|+|P|) per class; NaN (undefined) when the class is absent from ground truth and prediction",
    "iou": "|G∩P| / (|G|+|P|-|G∩P|) per class; NaN when undefined",
    "mean_f1": "mean of the defined per-class F1 over foreground (non-background) classes",
    "mean_iou_with_bg": "mean of the defined per-class IoU over all classes, background included (SegFace release)",
    "mean_iou_without_bg": "mean of the defined per-class IoU over foreground classes",
    "pixel_accuracy": "sum of |G∩P| / number of non-ignored pixels",
    "groups": "member classes' counts pooled, then F1/IoU of the merged region",
    "ignore": "pixels labelled ignore_index (255) are excluded from every count",
}


def _ratio(num: np.ndarray, den: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0, NaN where ``undefined``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)
    return np.where(undefined, np.nan, out)


def f1_from_counts(gt: np.ndarray, pred: np.ndarray, inter: np.ndarray) -> np.ndarray:
    """Elementwise F1 = 2|G∩P| / (|G|+|P|) over arrays of any shape (NaN where |G|+|P| = 0)."""
    den = np.asarray(gt, dtype=np.float64) + pred
    return _ratio(2.0 * np.asarray(inter, dtype=np.float64), den, den == 0)


def iou_from_counts(gt: np.ndarray, pred: np.ndarray, inter: np.ndarray) -> np.ndarray:
    """Elementwise IoU = |G∩P| / (|G|+|P|-|G∩P|) (NaN where the union is empty)."""
    union = np.asarray(gt, dtype=np.float64) + pred - inter
    return _ratio(inter, union, union == 0)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def counts_from_confusion(cm: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(|G|, |P|, |G∩P|) per class from a K x K matrix (rows = ground truth)."""
    if isinstance(cm, torch.Tensor):
        cm = cm.detach().cpu().numpy()
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be K x K, got shape {cm.shape}")
    if (cm < 0).any():
        raise ValueError("confusion matrix holds negative counts")
    return cm.sum(1), cm.sum(0), np.diagonal(cm).copy()


def scores_from_counts(gt: np.ndarray, pred: np.ndarray, inter: np.ndarray,
                       taxonomy: Taxonomy | str) -> dict[str, Any]:
    """Every score of a split from its per-class (|G|, |P|, |G∩P|) (see module docstring)."""
    taxonomy = get_taxonomy(taxonomy)
    gt, pred, inter = (np.asarray(a, dtype=np.int64) for a in (gt, pred, inter))
    k = taxonomy.num_classes
    if gt.shape != (k,) or pred.shape != (k,) or inter.shape != (k,):
        raise ValueError(f"taxonomy {taxonomy.name!r} has {k} classes; got counts of shapes "
                         f"{gt.shape}, {pred.shape}, {inter.shape}")
    undefined = (gt + pred) == 0
    f1 = f1_from_counts(gt, pred, inter)
    iou = iou_from_counts(gt, pred, inter)
    precision = _ratio(inter, pred, undefined)
    recall = _ratio(inter, gt, undefined)
    fg = taxonomy.foreground_ids

    groups = {}
    for gname, members in taxonomy.groups.items():
        m = list(members)
        g, p, i = gt[m].sum(), pred[m].sum(), inter[m].sum()
        groups[gname] = {
            "members": [taxonomy.names[c] for c in m],
            "f1": float(f1_from_counts(g, p, i)),
            "iou": float(iou_from_counts(g, p, i)),
            "precision": float(_ratio(i, p, g + p == 0)),
            "recall": float(_ratio(i, g, g + p == 0)),
            "gt_pixels": int(g), "pred_pixels": int(p), "intersection": int(i),
        }
    total = gt.sum()
    return {
        "per_class": [
            {"id": c, "name": taxonomy.names[c], "f1": float(f1[c]), "iou": float(iou[c]),
             "precision": float(precision[c]), "recall": float(recall[c]),
             "gt_pixels": int(gt[c]), "pred_pixels": int(pred[c]), "intersection": int(inter[c])}
            for c in range(k)
        ],
        "mean_f1": _nanmean(f1[fg]),
        "mean_iou_with_bg": _nanmean(iou),
        "mean_iou_without_bg": _nanmean(iou[fg]),
        "pixel_accuracy": float(inter.sum() / total) if total > 0 else float("nan"),
        "groups": groups,
        "undefined_classes": [taxonomy.names[c] for c in range(k) if undefined[c]],
        "conventions": dict(CONVENTIONS),
    }


def scores_from_confusion(cm: np.ndarray | torch.Tensor, taxonomy: Taxonomy | str) -> dict[str, Any]:
    """Every score of a split from its K x K confusion matrix (rows = ground truth)."""
    return scores_from_counts(*counts_from_confusion(cm), taxonomy)


def mean_f1_of(f1: np.ndarray, taxonomy: Taxonomy | str) -> np.ndarray:
    """Mean of the defined foreground F1 along the last axis of ``... x K`` (NaN if none defined)."""
    fg = np.asarray(f1)[..., get_taxonomy(taxonomy).foreground_ids]
    n = (~np.isnan(fg)).sum(-1)
    s = np.nansum(fg, -1)
    return np.divide(s, n, out=np.full(s.shape, np.nan), where=n > 0)
