"""The benchmark's rarity stage: train the rarity control, score it and the τ-norm candidates on the
long-tail val/test images, and write the rarity report (:mod:`lt_faceparse.reporting.rarity`).

The control is the plan's main model with the plan's schedule, trained on SynthFace-LT drawn with
the same generator, seed and sizes but every accessory at presence 0.5
(:data:`~lt_faceparse.reporting.rarity.CONTROL_PRESENCE`); it is scored on the long-tail set's val
and test images. Everything goes under ``out_dir/rarity/`` (not ``results/``, so the leaderboard
does not take the control for another plain model): ``control/{val,test}``, ``tau_norm/{split}/tau<τ>``
and ``rarity.json`` (the val choice and the goal check); the table and the figure go to
``out_dir/tables`` and ``out_dir/figures``. The long-tail model and the remedies are the benchmark's
own records (``results/<setting>/{val,test}``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from lt_faceparse.atomic import atomic_write_json
from lt_faceparse.reporting.rarity import CONTROL_PRESENCE, score_tau_norm, write_rarity_report

SPLITS = ("val", "test")


def _train_control(plan, cache: Path, runs_dir: Path, log: Callable[[str], None]) -> Path:
    """The control's final weights (trained unless this machine finished the same config)."""
    from lt_faceparse.engine.train import train
    from lt_faceparse.reporting.benchmark import generate_data, plan_config
    from lt_faceparse.reporting.sweep import config_fingerprint

    presence = dict(plan.presence)
    presence.update(CONTROL_PRESENCE)
    root = generate_data(dataclasses.replace(plan, presence=tuple(sorted(presence.items()))), cache / "synthface")
    main, kwargs = plan.models[0]
    cfg = plan_config(plan, root, main, kwargs, plan.resolution)
    cfg["out"] = str(runs_dir / "rarity_control" / f"run-{config_fingerprint(cfg)}")
    cfg["resume"] = "auto"  # a finished run is kept, an interrupted one resumes
    log(f"rarity control: {main} on {root.name} (accessories at presence 0.5) -> {cfg['out']}")
    return train(cfg) / "final.safetensors"


def _main_setting(jobs) -> Any:
    return next(s for s, _ in jobs if s.axis == "model")


def run_rarity_stage(plan, jobs, root: Path, cache: Path, runs_dir: Path, out_dir: Path, *, reuse_results: bool,
                     log: Callable[[str], None]) -> dict[str, Any] | None:
    """Train/score what the rarity report needs (nothing with ``reuse_results``) and write it; None (with a
    log line) when a record it needs is missing."""
    from lt_faceparse.records import load_record
    from lt_faceparse.reporting.sweep import run_folder
    from lt_faceparse.taxonomy import get_taxonomy

    results, folder = out_dir / "results", out_dir / "rarity"
    main = _main_setting(jobs)
    main_cfg = next(c for s, c in jobs if s is main)
    weights = run_folder(main, main_cfg, results, runs_dir) / "final.safetensors"
    if not reuse_results:
        control = _train_control(plan, cache, runs_dir, log)
        from lt_faceparse.engine.evaluate import evaluate_checkpoint

        for split in SPLITS:
            evaluate_checkpoint(control, "celebamask-hq", root, split, out_dir=folder / "control" / split,
                                n_resamples=0, provenance={"run": "rarity control", "remedy": "rarity control"})
            score_tau_norm(weights, root, split, folder / "tau_norm" / split)
    remedies = [s.name for s, _ in jobs if s.axis == "remedy"] + [f"{main.name}-{label}" for label, _ in plan.posthoc]
    splits = {}
    try:
        for split in SPLITS:
            taus = sorted((folder / "tau_norm" / split).glob("tau*"))
            splits[split] = {
                "control": load_record(folder / "control" / split),
                "longtail": load_record(results / main.name / split),
                "remedies": {**{name.removeprefix(f"{main.name}-"): load_record(results / name / split)
                                for name in remedies},
                             **{f"τ-norm(τ={p.name[3:]})": load_record(p) for p in taus}},
            }
    except FileNotFoundError as err:
        log(f"rarity report skipped: {err}")
        return None
    taxonomy = get_taxonomy(splits["test"]["longtail"].taxonomy)
    summary = write_rarity_report(splits["val"], splits["test"], taxonomy, out_dir, n_resamples=plan.n_resamples,
                                  seed=plan.seed)
    atomic_write_json(folder / "rarity.json", summary)
    goal = summary["goal"]
    log(f"rarity: val-chosen remedy {goal.get('chosen')}; test share of the tail-mean gap closed "
        f"{goal.get('test_share')}, goal met: {goal.get('met')}")
    return summary
