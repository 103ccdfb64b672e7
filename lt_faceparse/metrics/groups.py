"""Class groups and their scores, defined once: head/tail (the taxonomy's accessory classes are the
tail), presence bins (rare/common/frequent from the frequency table) and a dataset's own groups
(Helen's eyes/brows/mouth/overall), with Holm's correction for testing a family of classes.

A group's score is the mean of its classes' defined F1 (classes with undefined F1 are left out;
NaN when none is defined); :class:`GroupMeanF1` sums them exactly (one rounding, any class order),
:func:`group_mean_f1` is its vectorised form for bootstrap resamples. :class:`GroupMeanF1` computes it in torchmetrics' state/update/compute
shape, next to :class:`~lt_faceparse.metrics.confusion.ConfusionMatrix`; records, TensorBoard, the
leaderboard and the long-tail analysis all read group scores from here. (Helen's published group
F1 pools the member classes' pixel counts instead: :func:`lt_faceparse.metrics.scores.scores_from_confusion`.)
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from torchmetrics import Metric

from lt_faceparse.taxonomy import Taxonomy

HEAD, TAIL = "head", "tail"


def head_tail_ids(taxonomy: Taxonomy) -> dict[str, list[int]]:
    """Class ids of the head (non-accessory foreground) and the tail (accessory) classes."""
    tail = list(taxonomy.accessory_ids)
    return {HEAD: [i for i in taxonomy.foreground_ids if i not in tail], TAIL: tail}


def group_mean_f1(f1: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Mean of the defined F1 of classes ``ids`` along the last axis of ``... x K`` (NaN if none defined)."""
    part = np.asarray(f1, dtype=np.float64)[..., list(ids)]
    n = (~np.isnan(part)).sum(-1)
    s = np.nansum(part, -1)
    return np.divide(s, n, out=np.full(s.shape, np.nan), where=n > 0)


class GroupMeanF1(Metric):
    """Group means of per-class F1: ``update(per_class_f1)`` with a K-vector (NaN = undefined) of one
    split; ``compute()`` -> ``{group: mean F1}`` of the classes' F1 averaged over the updates in which
    each was defined (one update: the split's own group means). States sum over ranks."""

    full_state_update = False

    def __init__(self, groups: Mapping[str, Sequence[int]], num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = {str(name): [int(i) for i in ids] for name, ids in groups.items()}
        for name, ids in self.groups.items():
            if any(not 0 <= i < num_classes for i in ids):
                raise ValueError(f"class group {name!r} must list class ids in [0, {num_classes}), got {ids}")
        self.add_state("f1_sum", torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("defined", torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, per_class_f1: torch.Tensor | np.ndarray | Sequence[float]) -> None:
        f1 = torch.as_tensor(np.asarray(per_class_f1, dtype=np.float64), device=self.f1_sum.device)
        if f1.shape != self.f1_sum.shape:
            raise ValueError(f"expected {self.f1_sum.numel()} per-class F1 values, got shape {tuple(f1.shape)}")
        defined = ~torch.isnan(f1)
        self.f1_sum += torch.where(defined, f1, torch.zeros_like(f1))
        self.defined += defined

    def compute(self) -> dict[str, float]:
        per_class = (self.f1_sum / self.defined).cpu().numpy()  # 0 / 0 -> NaN: never defined
        return {name: _exact_mean(per_class[ids]) for name, ids in self.groups.items()}


def _exact_mean(values: np.ndarray) -> float:
    """Mean of the defined values from their correctly rounded sum (:func:`math.fsum`): the same for
    any order of the classes (NaN when none is defined)."""
    defined = values[~np.isnan(values)]
    return math.fsum(defined.tolist()) / len(defined) if len(defined) else float("nan")


def group_means(per_class_f1: np.ndarray | Sequence[float], groups: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """:class:`GroupMeanF1` of one K-vector of per-class F1 (one record)."""
    metric = GroupMeanF1(groups, len(per_class_f1))
    metric.update(per_class_f1)
    return metric.compute()


def holm(p_values: np.ndarray | Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values, same order as given (NaN entries are left out of the family
    and stay NaN)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = len(defined)
    order = defined[np.argsort(p[defined], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out
