"""One definition of class groups and their scores: head/tail ids, GroupMeanF1, Holm."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lt_faceparse.metrics.groups import GroupMeanF1, group_mean_f1, group_means, head_tail_ids, holm
from lt_faceparse.taxonomy import get_taxonomy


def test_head_tail_ids_split_the_foreground_by_kind():
    tax = get_taxonomy("celebamask-hq")
    groups = head_tail_ids(tax)
    assert groups["tail"] == list(tax.accessory_ids) and groups["tail"]
    assert sorted(groups["head"] + groups["tail"]) == sorted(tax.foreground_ids)
    assert not set(groups["head"]) & set(groups["tail"])
    assert head_tail_ids(get_taxonomy("lapa"))["tail"] == []  # LaPa has no accessories


def test_group_mean_f1_leaves_undefined_classes_out():
    f1 = [0.2, math.nan, 0.6, math.nan]
    means = group_means(f1, {"a": [0, 2], "b": [1, 3], "c": [0, 1]})
    assert means["a"] == pytest.approx(0.4) and math.isnan(means["b"]) and means["c"] == pytest.approx(0.2)
    assert float(group_mean_f1(np.array(f1), [0, 2])) == means["a"]


def test_group_metric_accumulates_like_torchmetrics():
    metric = GroupMeanF1({"all": [0, 1, 2]}, 3)
    metric.update(torch.tensor([0.5, math.nan, 1.0], dtype=torch.float64))
    metric.update([0.7, 0.3, math.nan])
    # per class: (0.5 + 0.7) / 2, 0.3 / 1, 1.0 / 1 -> their mean
    assert metric.compute()["all"] == pytest.approx((0.6 + 0.3 + 1.0) / 3)
    with pytest.raises(ValueError, match="class ids"):
        GroupMeanF1({"bad": [3]}, 3)
    with pytest.raises(ValueError, match="per-class F1"):
        metric.update([0.5, 0.5])


def test_holm_adjustment_known_answer():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm([0.5, float("nan")])
    assert adjusted[0] == 0.5 and math.isnan(adjusted[1])
