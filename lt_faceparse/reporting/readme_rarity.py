"""The README section that reads the long-tail remedies against the rarity gap (from
``rarity/rarity.json`` and ``tables/rarity_gap.md``, written by the benchmark's rarity stage)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lt_faceparse.metrics.rarity_gap import RESOLUTION_BOUND_F1, TAIL_MEAN


def _pct(value: float | None, unit: str = "") -> str:
    """``value`` x 100 with one decimal and ``unit``; ``n/a`` when undefined."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}{unit}"


def rarity_section(out_dir: str | Path, plan: dict[str, Any]) -> list[str]:
    """``## Rarity or smallness``: why the plan draws the accessories as it does, the control against the
    long-tail model per tail class, the val-chosen remedy and the goal check; empty without a rarity report."""
    out_dir = Path(out_dir)
    summary_path, table_path = out_dir / "rarity" / "rarity.json", out_dir / "tables" / "rarity_gap.md"
    if not (summary_path.is_file() and table_path.is_file()):
        return []
    summary = json.loads(summary_path.read_text())
    goal, choice = summary["goal"], summary["choice"]
    rows = {r["name"]: r for r in summary["test_rows"]}
    bound = [name for name, r in rows.items() if r["resolution_bound"] and name != TAIL_MEAN]
    stroke = plan.get("accessory_stroke") or 0
    lines = [
        "## Rarity or smallness", "",
        "A tail class can score low because it is rare or because it is small at the training resolution. The "
        "rarity control is the first model trained with the same schedule on SynthFace-LT drawn by the same "
        "generator with every accessory at presence 0.5, scored on the same val and test images; the rarity gap "
        "of a class is F1(control) − F1(long-tail), and each remedy is read as the share of that gap it closes "
        "(paired bootstrap over test images, 95% CIs).",
        "",
        (f"Why the plan draws accessories at least {stroke:g} px wide at {plan.get('resolution')} px: at their "
         "natural size (a pixel or two) glasses frames, necklaces and earrings stay near zero F1 even for the "
         "control, so no remedy could be judged on them (measurements: `reports/history.md`, 'Rarity or "
         "smallness'). Presence probabilities stay CelebAMask-HQ-like." if stroke else
         "Accessories are drawn at their natural size."),
        "",
        f"Resolution-bound classes (control test F1 below {100 * RESOLUTION_BOUND_F1:.0f}, remedies not judged on "
        f"them): {', '.join(bound) or 'none'}.",
        "",
        table_path.read_text().strip(),
        "",
        f"- **Chosen on val**: {choice.get('label') or 'none'} ({choice.get('reason')}).",
        f"- **Goal** ({goal['rule']}): **{'met' if goal['met'] else 'not met'}**. On test the chosen remedy closes "
        f"{_pct(goal.get('test_share'), '%')} of the tail-mean gap ({_pct(goal.get('tail_mean_gap'))} F1 points) "
        f"with head ΔF1 {_pct(goal.get('test_head_delta'))} (lower bound {_pct(goal.get('test_head_lower'))}); the "
        f"best share of any remedy on test is {_pct(goal.get('best_test_share'), '%')}.",
        "",
    ]
    return lines
