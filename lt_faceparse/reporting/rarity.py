"""The rarity report: ``tables/rarity_gap.{md,csv,tex}``, ``figures/rarity_gap.{png,pdf}``, the
val-chosen remedy and the goal check (issue 21).

Inputs are result records on the same images: the rarity control (plain model trained with the
tail classes frequent, :data:`CONTROL_PRESENCE`), uncorrected and with post-hoc label-shift
corrections towards the long-tail training priors (:data:`CONTROL_SHIFT_TAUS`), the plain long-tail
model, and one record per remedy (a training remedy, or a post-hoc option such as τ-norm on the
plain model), each on val and on test.

Why the control is corrected: trained with each accessory in half of its images, the control predicts
them as if half the test images held one; scored on long-tail images (a necklace in one image of twenty)
its F1 is then bounded by false positives on the images without the class, which is the shift of the
class prior between the two training sets, not the model's ability to resolve the class. Bayes' rule for
a known label shift (τ = 1) removes it; the τ of the control (0 = none, or one of
:data:`CONTROL_SHIFT_TAUS`) is chosen on **val** by the control's own mean F1 over the tail classes,
before and without looking at any remedy. The remedy is chosen on **val** (:func:`choose_on_val`: the
largest share of the tail-mean gap among those losing at most :data:`HEAD_LOSS_BAR` of the head mean F1)
and then reported on **test**; the goal (:func:`goal_check`) is fixed before remedies are compared: the
chosen remedy closes at least :data:`GOAL_SHARE` of the tail-mean gap on test and the lower 95% bound of
its paired head ΔF1 is above −:data:`HEAD_LOSS_BAR`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from lt_faceparse.metrics.bootstrap import paired_bootstrap_subsets
from lt_faceparse.metrics.rarity_gap import RESOLUTION_BOUND_F1, TAIL_MEAN, GapRow, rarity_gap, tail_f1
from lt_faceparse.reporting.figures import STYLE, method_colors, plt, save_figure
from lt_faceparse.reporting.tables import Column, Table, write_table
from lt_faceparse.taxonomy import Taxonomy

# the control's training split: every SynthFace-LT accessory at presence 0.5 (the rest unchanged)
CONTROL_PRESENCE: tuple[tuple[str, float], ...] = (("eye_g", 0.5), ("hat", 0.5), ("ear_r", 0.5), ("neck_l", 0.5))
# label-shift corrections of the control tried on val besides none: post-hoc logit adjustment from the control's
# training priors towards the long-tail training priors, argmax z − τ (log π_control − log π_long-tail)
CONTROL_SHIFT_TAUS = (0.5, 1.0)
GOAL_SHARE = 0.5
HEAD_LOSS_BAR = 0.01  # one F1 point


@dataclass(frozen=True)
class Choice:
    """The remedy chosen on val, and why (its val share and head ΔF1)."""

    label: str | None
    val_share: float
    val_head_delta: float
    reason: str


def choose_control(controls: Mapping[float, Any], taxonomy: Taxonomy) -> tuple[float, dict[float, float]]:
    """(the control's label-shift τ with the largest val mean F1 over the tail classes, ties to the smaller τ;
    that mean for every τ). ``controls``: τ (0 = uncorrected) -> the control's val record."""
    means = {}
    for tau, record in controls.items():
        values = [v for v in tail_f1(record, taxonomy.accessory_ids) if not math.isnan(v)]
        means[float(tau)] = sum(values) / len(values) if values else math.nan
    best = max(sorted(means), key=lambda t: -math.inf if math.isnan(means[t]) else means[t])
    return best, means


def control_text(tau: float) -> str:
    """How the control of a report was scored."""
    if not tau:
        return "uncorrected"
    return f"label-shift corrected towards the long-tail training priors, τ = {tau:g} chosen on val"


def head_delta(longtail: Any, remedy: Any, taxonomy: Taxonomy, *, n_resamples: int = 1000, seed: int = 0):
    """Paired bootstrap of the head mean F1 (non-accessory foreground classes), remedy − long-tail."""
    head = [i for i in taxonomy.foreground_ids if i not in set(taxonomy.accessory_ids)]
    return paired_bootstrap_subsets(longtail, remedy, {"head": head}, n_resamples=n_resamples, seed=seed)["head"]


def gap_rows(control: Any, longtail: Any, remedies: Mapping[str, Any], taxonomy: Taxonomy, *,
             n_resamples: int = 1000, seed: int = 0) -> list[GapRow]:
    return rarity_gap(control, longtail, remedies, list(taxonomy.accessory_ids), taxonomy.display_names,
                      n_resamples=n_resamples, seed=seed)


def choose_on_val(val_rows: Sequence[GapRow], head_deltas: Mapping[str, float]) -> Choice:
    """The remedy with the largest tail-mean share on val among those whose val head ΔF1 ≥ −1 point."""
    mean = next(r for r in val_rows if r.name == TAIL_MEAN)
    allowed = {k: v.value for k, v in mean.closed.items()
               if not math.isnan(v.value) and head_deltas[k] >= -HEAD_LOSS_BAR}
    if not allowed:
        return Choice(None, math.nan, math.nan, "no remedy has a defined val share within the head bar")
    label = max(allowed, key=allowed.get)
    return Choice(label, allowed[label], head_deltas[label],
                  f"largest val tail-mean share ({100 * allowed[label]:.1f}%) among remedies losing ≤ 1 head point")


def goal_check(test_rows: Sequence[GapRow], choice: Choice, test_head) -> dict[str, Any]:
    """Whether the val-chosen remedy meets the goal on test (see module docstring); ``test_head``: its paired
    head ΔF1 on test (None when nothing was chosen). The best test share of any remedy is reported either way."""
    mean = next(r for r in test_rows if r.name == TAIL_MEAN)
    best = max((v.value for v in mean.closed.values() if not math.isnan(v.value)), default=math.nan)
    share = mean.closed[choice.label].value if choice.label else math.nan
    met = test_head is not None and share >= GOAL_SHARE and test_head.lower > -HEAD_LOSS_BAR
    return {"chosen": choice.label, "test_share": share, "best_test_share": best,
            "test_head_delta": None if test_head is None else test_head.delta,
            "test_head_lower": None if test_head is None else test_head.lower, "met": met,
            "tail_mean_gap": mean.gap.value,
            "rule": f"share of the tail-mean gap ≥ {GOAL_SHARE:.0%} and lower 95% bound of head ΔF1 > "
                    f"−{100 * HEAD_LOSS_BAR:g} point (paired bootstrap over test images)"}


def _pct_ci(estimate) -> str:
    if math.isnan(estimate.value):
        return "-"
    lo = "?" if math.isnan(estimate.lower) else f"{100 * estimate.lower:.0f}"
    hi = "?" if math.isnan(estimate.upper) else f"{100 * estimate.upper:.0f}"
    return f"{100 * estimate.value:.0f}% [{lo}, {hi}]"


def uncorrected_f1(rows: Sequence[GapRow], control: Any, taxonomy: Taxonomy) -> dict[str, float]:
    """The uncorrected control's F1 per row of ``rows`` (the tail mean over the same judged classes)."""
    f1 = tail_f1(control, taxonomy.accessory_ids)
    by_name = {taxonomy.display_names[i]: float(v) for i, v in zip(taxonomy.accessory_ids, f1)}
    judged = [by_name[r.name] for r in rows if r.name in by_name and not r.resolution_bound]
    return {**by_name, TAIL_MEAN: sum(judged) / len(judged) if judged else math.nan}


def gap_table(rows: Sequence[GapRow], remedies: Sequence[str], *, chosen: str | None, split: str,
              control_tau: float = 0.0, uncorrected: Mapping[str, float] | None = None) -> Table:
    columns = [Column("class", "Class", "str"), Column("control", "Control F1")]
    columns += [Column("uncorrected", "Control F1, uncorrected")] if control_tau and uncorrected else []
    columns += [Column("longtail", "Long-tail F1"), Column("gap", "Gap (points) [95% CI]", "rstr")]
    columns += [Column(f"closed:{r}", f"Closed: {r}{' (val-chosen)' if r == chosen else ''}", "rstr")
                for r in remedies]
    body = []
    for row in rows:
        cell = {"class": row.name + (" (resolution-bound)" if row.resolution_bound else ""),
                "control": row.control_f1, "longtail": row.longtail_f1,
                "uncorrected": (uncorrected or {}).get(row.name, math.nan),
                "gap": "-" if math.isnan(row.gap.value)  # the class is in neither model's test images
                else f"{100 * row.gap.value:+.2f} [{100 * row.gap.lower:+.2f}, {100 * row.gap.upper:+.2f}]"}
        for r in remedies:
            cell[f"closed:{r}"] = "n/a (resolution-bound)" if row.resolution_bound else _pct_ci(row.closed[r])
        body.append(cell)
    return Table(columns, body, title=f"Rarity gap per tail class ({split})",
                 caption=(f"Gap = F1(control) − F1(long-tail), control = the same model trained with every accessory "
                          f"at presence 0.5 ({control_text(control_tau)}), both scored on the same {split} images; "
                          f"Closed = (F1(remedy) − F1(long-tail)) / gap, 95% paired percentile bootstrap over "
                          f"images. "
                          f"A class whose control F1 is below {100 * RESOLUTION_BOUND_F1:.0f} is resolution-bound: "
                          f"remedies are not judged on it, and the tail mean leaves it out."))


def gap_figure(rows: Sequence[GapRow], out_dir: Path, stem: str = "rarity_gap", *,
               control_tau: float = 0.0) -> dict[str, Path]:
    """Control, long-tail and each remedy's F1 per tail class (bars), the gap drawn between the first two."""
    remedies = list(rows[0].remedy_f1)
    control = f"control (label shift τ={control_tau:g})" if control_tau else "control"
    series = [(control, [r.control_f1 for r in rows]), ("long-tail", [r.longtail_f1 for r in rows])]
    series += [(k, [r.remedy_f1[k] for r in rows]) for k in remedies]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(rows) * (1 + 0.3 * len(series)) / 2, 2.8))
        width = 0.8 / len(series)
        for j, ((label, values), color) in enumerate(zip(series, method_colors(len(series)))):
            xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(rows))]
            ax.bar(xs, [100 * v for v in values], width, label=label, color=color)
        ax.axhline(100 * RESOLUTION_BOUND_F1, color="0.5", lw=0.8, ls=":")
        ax.set_xticks(range(len(rows)), [r.name + ("*" if r.resolution_bound else "") for r in rows])
        ax.set_ylabel("test F1 (%)")
        ax.legend(ncol=1, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    caption = (f"Per tail class: F1 of the rarity control (accessories at presence 0.5; {control_text(control_tau)}), "
               "of the plain long-tail model "
               "and of each remedy, on the same test images; * = resolution-bound (control F1 below the dotted "
               f"{100 * RESOLUTION_BOUND_F1:.0f}).")
    return save_figure(fig, out_dir, stem, caption)


def write_rarity_report(val: Mapping[str, Any], test: Mapping[str, Any], taxonomy: Taxonomy, out_dir: str | Path,
                        *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``val``/``test``: ``{"controls": {τ: record}, "longtail": record, "remedies": {label: record}}``
    (τ = 0: the uncorrected control). Chooses the control's τ on val (:func:`choose_control`), writes the
    table (test, with the val-chosen remedy marked) and the figure under ``out_dir``/tables|figures;
    returns both choices and the goal check."""
    out_dir = Path(out_dir)
    labels = list(test["remedies"])
    tau, control_means = choose_control(val["controls"], taxonomy)
    val_control, test_control = val["controls"][tau], test["controls"][tau]
    val_rows = gap_rows(val_control, val["longtail"], val["remedies"], taxonomy, n_resamples=n_resamples, seed=seed)
    val_heads = {k: head_delta(val["longtail"], v, taxonomy, n_resamples=n_resamples, seed=seed).delta
                 for k, v in val["remedies"].items()}
    choice = choose_on_val(val_rows, val_heads)
    test_rows = gap_rows(test_control, test["longtail"], test["remedies"], taxonomy, n_resamples=n_resamples,
                         seed=seed)
    test_head = head_delta(test["longtail"], test["remedies"][choice.label], taxonomy, n_resamples=n_resamples,
                           seed=seed) if choice.label else None
    goal = goal_check(test_rows, choice, test_head)
    uncorrected = uncorrected_f1(test_rows, test["controls"][0.0], taxonomy)
    write_table(gap_table(test_rows, labels, chosen=choice.label, split="test", control_tau=tau,
                          uncorrected=uncorrected), out_dir / "tables", "rarity_gap")
    gap_figure(test_rows, out_dir / "figures", control_tau=tau)
    means = {f"{t:g}": v for t, v in control_means.items()}
    control = {"tau": tau, "scoring": control_text(tau), "val_tail_mean_f1": means, "test_uncorrected_f1": uncorrected}
    return {"control": control, "choice": choice.__dict__, "goal": goal, "test_rows": [r.to_dict() for r in test_rows],
            "val_rows": [r.to_dict() for r in val_rows], "val_head_delta": val_heads}
