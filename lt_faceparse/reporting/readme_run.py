"""The README section that says what a benchmark report ran: data, models, remedies (with their
parameters), post-hoc options and the plan."""

from __future__ import annotations

from typing import Any

from lt_faceparse.engine.remedies import resolve_remedy
from lt_faceparse.longtail.spec import remedy_label
from lt_faceparse.records import posthoc_label


def what_was_run(info: dict[str, Any]) -> list[str]:
    """The plan of a benchmark run as Markdown bullets (every number from ``info["plan"]``)."""
    plan = info["plan"]
    presence = dict(plan.get("presence") or ())
    splits = plan.get("splits")
    counts = ""
    if splits and plan.get("num_images"):
        n = plan["num_images"]
        n_val, n_test = round(n * splits[1] / sum(splits)), round(n * splits[2] / sum(splits))
        counts = f" = {n - n_val - n_test} / {n_val} / {n_test} images"
    lines = [
        f"- Plan `{plan.get('name')}`: {plan.get('num_images')} SynthFace-LT images at {plan.get('image_size')} px, "
        f"split {tuple(splits or ())} (train/val/test){counts}, seed {plan.get('seed')}; class presence "
        + (f"as SynthFace-LT's defaults except {presence}" if presence else "SynthFace-LT's defaults "
           "(CelebAMask-HQ-like: earring 0.26, eyeglasses 0.07, hat 0.06, necklace 0.05)")
        + (f"; accessory strokes and earring studs at least {plan['accessory_stroke']:g} px wide at the "
           f"{plan.get('resolution')} px training resolution" if plan.get("accessory_stroke") else "") + ".",
        f"- Training ({plan.get('device', 'cpu')}, {plan.get('precision', 'fp32')}): {plan.get('epochs')} epochs, "
        f"batch {plan.get('batch')}, AdamW lr {plan.get('lr')}, MultiStepLR (x0.1) at epochs "
        f"{list(plan.get('milestones', []))}, input {plan.get('resolution')} px"
        + (", random horizontal flips (left/right classes swapped)" if plan.get("flip") else "")
        + f", no pretraining, BatchNorm statistics "
        f"re-estimated on {plan.get('precise_bn_batches', 0)} training batches after the last epoch, last-epoch "
        f"checkpoint; {plan.get('workers', 1)} setting(s) trained side by side. Every model and remedy has this same "
        "schedule.",
        "- Models: " + ", ".join(f"{m} {k}" for m, k in plan.get("models", [])) + ".",
        "- Long-tail remedies (the first model trained again, same budget; parameters from the shipped remedy "
        "files, chosen on SynthFace-LT val): " + ("; ".join(_remedy_text(name) for name in plan.get("remedies", []))
                                                  or "none") + ".",
        "- Post-hoc options (the plain first model scored again on val and test): " + ("; ".join(
            f"`{label}`: {posthoc_label(options)}" for label, options in plan.get("posthoc", [])) or "none") + ".",
        f"- SegFace resolution sweep: trained at {[plan.get('resolution'), *plan.get('sweep_resolutions', [])]} px; "
        f"timing-only resolutions {list(plan.get('speed_resolutions', []))}; timing-only SegFace backbones "
        f"{list(plan.get('speed_backbones', [])) or 'none'}.",
        f"- Scoring: test split, 'input' protocol (network resolution), pixel counts pooled over the split; "
        f"95% CIs by percentile bootstrap over test images ({plan.get('n_resamples')} resamples); choices between "
        "settings (the remedy named below) are made on the val split.",
        f"- Plan note: {plan.get('notes')}.",
    ]
    if info.get("reused_results"):
        trained = info.get("trained_by") or {}
        lines.append("- **Results reused** (`--reuse-results`): nothing was trained or timed by this command; the "
                     "records, sweep rows and speed records under `results/` come from "
                     + (f"`{trained.get('command')}`" if trained.get("command") else "an earlier run") + ".")
    return lines


def _remedy_text(name: str) -> str:
    """``name``: its remedy label with every parameter (from the remedy file as it is now)."""
    try:
        return f"`{name}`: {remedy_label(resolve_remedy(name)[1])}"
    except FileNotFoundError:
        return f"`{name}` (its remedy file is no longer found; the records state its parameters)"
