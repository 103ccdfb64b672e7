"""The rarity report: the val choice respects the head bar, the goal check reads the test share,
and the table and figure are written (Markdown, CSV, LaTeX; PNG, PDF)."""

from __future__ import annotations

import numpy as np

from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.reporting.rarity import choose_control, choose_on_val, write_rarity_report
from lt_faceparse.metrics.rarity_gap import Estimate, GapRow, TAIL_MEAN
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")
N = 30


def _stats(tail_hit: float, head_hit: float = 0.9) -> PerImageStats:
    """10 pixels of every class per image; a share ``hit`` of them found (tail or head), none predicted wrongly
    except as background."""
    k = TAX.num_classes
    gt = np.full((N, k), 10, dtype=np.int64)
    hit = np.full(k, head_hit)
    hit[TAX.accessory_ids] = tail_hit
    inter = np.tile(np.round(10 * hit).astype(np.int64), (N, 1))
    inter[:, 0] = 10
    pred = inter.copy()
    pred[:, 0] += (gt[:, 1:] - inter[:, 1:]).sum(1)
    return PerImageStats(gt=gt, pred=pred, inter=np.minimum(inter, gt), image_ids=np.arange(N))



def test_the_val_choice_skips_a_remedy_that_loses_the_head():
    rows = [GapRow(TAIL_MEAN, 0.8, 0.2, Estimate(0.6, 0.5, 0.7), False,
                   {"big": Estimate(0.9, 0.8, 1.0), "small": Estimate(0.3, 0.2, 0.4)})]
    choice = choose_on_val(rows, {"big": -0.05, "small": 0.0})
    assert choice.label == "small" and choice.val_share == 0.3


def test_the_control_correction_is_chosen_on_val_by_the_tail_mean_with_ties_to_the_smaller_tau():
    tau, means = choose_control({0.0: _stats(0.6), 0.5: _stats(0.8), 1.0: _stats(0.7)}, TAX)
    # F1 of a tail class found at share h (all misses predicted as background): 2h / (1 + h)
    assert tau == 0.5 and abs(means[0.5] - 1.6 / 1.8) < 1e-12 and abs(means[0.0] - 1.2 / 1.6) < 1e-12
    assert choose_control({0.0: _stats(0.8), 1.0: _stats(0.8)}, TAX)[0] == 0.0


def test_report_writes_table_and_figure_and_checks_the_goal(tmp_path):
    split = {"controls": {0.0: _stats(0.5), 0.5: _stats(0.9), 1.0: _stats(0.8)}, "longtail": _stats(0.1),
             "remedies": {"good": _stats(0.7), "bad-head": _stats(0.9, head_hit=0.5)}}
    out = write_rarity_report(split, split, TAX, tmp_path, n_resamples=20)
    assert out["control"]["tau"] == 0.5 and "τ = 0.5 chosen on val" in out["control"]["scoring"]
    assert abs(out["control"]["test_uncorrected_f1"]["tail mean"] - 1.0 / 1.5) < 1e-12
    assert out["choice"]["label"] == "good"
    assert out["goal"]["met"] is True
    assert abs(out["goal"]["test_share"] - (14 / 17 - 2 / 11) / (18 / 19 - 2 / 11)) < 1e-9
    for ext in ("md", "csv", "tex"):
        assert (tmp_path / "tables" / f"rarity_gap.{ext}").is_file()
    for ext in ("png", "pdf"):
        assert (tmp_path / "figures" / f"rarity_gap.{ext}").is_file()
    table = (tmp_path / "tables" / "rarity_gap.md").read_text()
    assert "val-chosen" in table and "Control F1, uncorrected" in table and "| 66.67 |" in table


def test_the_goal_reports_the_best_share_when_nothing_is_chosen():
    from lt_faceparse.reporting.rarity import Choice, goal_check

    rows = [GapRow(TAIL_MEAN, 0.8, 0.2, Estimate(0.6, 0.5, 0.7), False, {"r": Estimate(0.2, 0.1, 0.3)})]
    goal = goal_check(rows, Choice(None, float("nan"), float("nan"), "none"), None)
    assert goal["met"] is False and goal["best_test_share"] == 0.2 and goal["test_head_delta"] is None
