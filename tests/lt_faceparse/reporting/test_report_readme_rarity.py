"""The README's rarity section: rendered from rarity.json and the table, every number from them."""

import json

from lt_faceparse.reporting.readme_rarity import rarity_section


def _write(out, *, met=False):
    (out / "rarity").mkdir(parents=True)
    (out / "tables").mkdir()
    rows = [{"name": "E-Glasses", "resolution_bound": False}, {"name": "Necklace", "resolution_bound": True},
            {"name": "tail mean", "resolution_bound": False}]
    summary = {"choice": {"label": "crt", "reason": "largest val tail-mean share (31.0%)"},
               "goal": {"rule": "share ≥ 50%", "met": met, "test_share": 0.3125, "tail_mean_gap": 0.2,
                        "test_head_delta": -0.004, "test_head_lower": -0.009, "best_test_share": 0.4},
               "test_rows": rows,
               "control": {"tau": 0.5, "val_tail_mean_f1": {"0": 0.61, "0.5": 0.655, "1": 0.6},
                           "scoring": "label-shift corrected towards the long-tail training priors, τ = 0.5 chosen on val"}}
    (out / "rarity" / "rarity.json").write_text(json.dumps(summary))
    (out / "tables" / "rarity_gap.md").write_text("| class | control F1 |\n|---|---|\n| E-Glasses | 80.0 |\n")


def test_the_section_states_the_choice_the_goal_and_why_the_plan(tmp_path):
    _write(tmp_path)
    text = "\n".join(rarity_section(tmp_path, {"accessory_stroke": 6.0, "resolution": 64, "epochs": 7, "flip": True,
                                                "models": [["segface", {"dim": 128}], ["bisenet", {}]]}))
    assert "Why it trains 7 epochs, random flips, a 128-wide SegFace decoder" in text
    assert text.startswith("## Rarity or smallness")
    assert "at least 6 px wide at 64 px" in text and "| E-Glasses | 80.0 |" in text
    assert "Resolution-bound classes (control test F1 below 50, remedies not judged on them): Necklace." in text
    assert "**Chosen on val**: crt" in text and "**not met**" in text
    assert "closes 31.2% of the tail-mean gap (20.0 F1 points) with head ΔF1 -0.4 (lower bound -0.9)" in text
    assert "best share of any remedy on test is 40.0%" in text
    assert "tail-mean F1 (τ = 0: 61.0, τ = 0.5: 65.5, τ = 1: 60.0)" in text
    assert "the control below is **label-shift corrected towards the long-tail training priors, τ = 0.5" in text


def test_no_rarity_report_no_section(tmp_path):
    assert rarity_section(tmp_path, {}) == []
