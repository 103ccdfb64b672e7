import math

import numpy as np
import pytest

from lt_faceparse.custom_taxonomy import taxonomy_from_names
from lt_faceparse.metrics.scores import mean_f1_of, scores_from_confusion, scores_from_counts
from lt_faceparse.taxonomy import get_taxonomy

TAX4 = taxonomy_from_names("toy4", ["background", "skin", "nose", "hat"])


def test_hand_computed_scores_absent_class_is_undefined():
    # rows = ground truth, cols = prediction; "hat" (3) absent from both
    cm = np.array([[50, 5, 0, 0],
                   [10, 30, 0, 0],
                   [0, 4, 6, 0],
                   [0, 0, 0, 0]])
    s = scores_from_confusion(cm, TAX4)
    f1 = [c["f1"] for c in s["per_class"]]
    assert f1[0] == pytest.approx(2 * 50 / (55 + 60))
    assert f1[1] == pytest.approx(2 * 30 / (40 + 39))
    assert f1[2] == pytest.approx(2 * 6 / (10 + 6))
    assert math.isnan(f1[3])
    assert s["undefined_classes"] == ["hat"]
    assert s["per_class"][2]["precision"] == pytest.approx(1.0)
    assert s["per_class"][2]["recall"] == pytest.approx(0.6)
    assert s["per_class"][1]["iou"] == pytest.approx(30 / (40 + 39 - 30))
    # mean F1 over foreground (skin, nose), the undefined hat excluded, never counted as 1.0
    assert s["mean_f1"] == pytest.approx((60 / 79 + 12 / 16) / 2)
    ious = [50 / 65, 30 / 49, 6 / 10]
    assert s["mean_iou_with_bg"] == pytest.approx(np.mean(ious))
    assert s["mean_iou_without_bg"] == pytest.approx(np.mean(ious[1:]))
    assert s["pixel_accuracy"] == pytest.approx(86 / 105)
    assert s["per_class"][3]["gt_pixels"] == 0 and s["per_class"][0]["pred_pixels"] == 60


def test_one_sided_class_scores_zero_not_nan():
    cm = np.array([[5, 0, 0, 2],  # "hat" predicted on background pixels, never in ground truth
                   [0, 4, 0, 0],
                   [0, 0, 3, 0],
                   [0, 0, 0, 0]])
    s = scores_from_confusion(cm, TAX4)
    hat = s["per_class"][3]
    assert hat["f1"] == 0.0 and hat["iou"] == 0.0 and hat["precision"] == 0.0 and hat["recall"] == 0.0
    assert s["undefined_classes"] == []
    assert s["mean_f1"] == pytest.approx((1 + 1 + 0) / 3)


def test_groups_pool_counts_not_average():
    helen = get_taxonomy("helen")
    k = helen.num_classes
    gt, pred, inter = np.zeros(k, int), np.zeros(k, int), np.zeros(k, int)
    # l_eye (4): big and good; r_eye (5): small and poor
    gt[4], pred[4], inter[4] = 900, 900, 810
    gt[5], pred[5], inter[5] = 100, 100, 10
    gt[0] = pred[0] = inter[0] = 1000
    s = scores_from_counts(gt, pred, inter, helen)
    eyes = s["groups"]["eyes"]
    assert eyes["f1"] == pytest.approx(2 * 820 / 2000)  # pooled: 0.82
    assert eyes["f1"] != pytest.approx((0.9 + 0.1) / 2)  # not the mean of member F1s (0.5)
    assert eyes["members"] == ["l_eye", "r_eye"]
    assert eyes["iou"] == pytest.approx(820 / (2000 - 820))
    assert set(s["groups"]) == {"eyes", "brows", "mouth", "overall"}
    assert math.isnan(s["groups"]["brows"]["f1"])  # no brow pixels anywhere


def test_mean_f1_of_batches_skips_nan():
    f1 = np.array([[1.0, 0.5, np.nan, 0.25], [0.0, np.nan, np.nan, np.nan]])
    out = mean_f1_of(f1, TAX4)
    assert out[0] == pytest.approx(0.375)
    assert math.isnan(out[1])


def test_rejects_malformed_confusion():
    with pytest.raises(ValueError, match="K x K"):
        scores_from_confusion(np.zeros((3, 4)), TAX4)
    with pytest.raises(ValueError, match="4 classes"):
        scores_from_confusion(np.zeros((3, 3)), TAX4)
