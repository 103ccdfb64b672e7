"""The benchmark's rarity stage: train the rarity control, score it and the τ-norm candidates on the
long-tail val/test images, and write the rarity report (:mod:`lt_faceparse.reporting.rarity`).

The control is the plan's main model with the plan's schedule, trained on SynthFace-LT drawn with
the same generator, seed and sizes but every accessory at presence 0.5
(:data:`~lt_faceparse.reporting.rarity.CONTROL_PRESENCE`; its training config:
:func:`lt_faceparse.experiments.benchmark.rarity_control_config`); it is scored on the long-tail set's
val and test images, uncorrected and corrected for the label shift between its training priors and
the long-tail ones (:data:`~lt_faceparse.reporting.rarity.CONTROL_SHIFT_TAUS`; the report chooses on val).
Everything goes under ``out_dir/rarity/`` (not ``results/``, so the leaderboard does not take the
control for another plain model): ``control/{val,test}``, ``control_shift/{split}/tau<τ>``,
``tau_norm/{split}/tau<τ>``
and ``rarity.json`` (the val choice and the goal check); the table and the figure go to
``out_dir/tables`` and ``out_dir/figures``. The long-tail model and the remedies are the benchmark's
own records (``results/<setting>/{val,test}``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from lt_faceparse.atomic import atomic_write_json
from lt_faceparse.data import build_dataset
from lt_faceparse.engine.evaluate import evaluate_checkpoint
from lt_faceparse.engine.train import train
from lt_faceparse.experiments.parallel import run_calls
from lt_faceparse.experiments.plans import BenchmarkPlan
from lt_faceparse.experiments.sweep import SweepSetting, main_job, run_folder
from lt_faceparse.records import ResultRecord, load_record
from lt_faceparse.longtail.priors import ClassPriors, split_statistics
from lt_faceparse.reporting.rarity import CONTROL_SHIFT_TAUS, write_rarity_report
from lt_faceparse.taxonomy import get_taxonomy

SPLITS = ("val", "test")
TAU_GRID = (0.25, 0.5, 0.75, 1.0)  # post-hoc τ-norm candidates compared on val


def tau_norm_calls(weights: str | Path, root: str | Path, split: str, out_dir: str | Path, *,
                   taus: Sequence[float] = TAU_GRID, n_resamples: int = 0) -> dict[str, Callable[[], ResultRecord]]:
    """The scorings of the long-tail model's weights with post-hoc τ-norm at each τ (label -> call that saves
    the record under ``out_dir/tau<τ>``): the τ candidates enter the val choice as remedies, so τ is chosen
    on val."""
    return {f"τ-norm(τ={tau:g})": partial(evaluate_checkpoint, weights, "celebamask-hq", root, split,
                                          out_dir=Path(out_dir) / f"tau{tau:g}", n_resamples=n_resamples,
                                          tau_norm=tau, show_progress=False)
            for tau in taus}



def _record_folders(plan: BenchmarkPlan, jobs: Sequence[tuple[SweepSetting, dict[str, Any]]], out_dir: Path,
                    split: str) -> dict[str, Any]:
    """Where the rarity report's records of ``split`` live: control, long-tail and each remedy's folder."""
    results, folder = out_dir / "results", out_dir / "rarity"
    main = main_job(jobs)[0]
    remedies = [s.name for s, _ in jobs if s.axis == "remedy"] + [f"{main.name}-{label}" for label, _ in plan.posthoc]
    return {
        "controls": {0.0: folder / "control" / split,
                     **{tau: folder / "control_shift" / split / f"tau{tau:g}" for tau in CONTROL_SHIFT_TAUS}},
        "longtail": results / main.name / split,
        "remedies": {**{name.removeprefix(f"{main.name}-"): results / name / split for name in remedies},
                     **{f"τ-norm(τ={p.name[3:]})": p for p in sorted((folder / "tau_norm" / split).glob("tau*"))}},
    }


def _train_priors(root: str | Path) -> ClassPriors:
    """Pixel priors of the training split under ``root`` (counted once, then cached)."""
    return split_statistics(build_dataset("celebamask-hq", root, "train", resolution=None, merge="segface")).priors


def control_calls(control: str | Path, control_root: str | Path, root: str | Path, split: str,
                  out_dir: str | Path) -> list[Callable[[], ResultRecord]]:
    """The scorings of the control's weights on ``split`` of the long-tail set ``root``: uncorrected
    (``out_dir/control/split``) and with each label-shift correction from the control's training priors
    towards the long-tail ones (``out_dir/control_shift/split/tau<τ>``)."""
    out_dir = Path(out_dir)
    score = partial(evaluate_checkpoint, control, "celebamask-hq", root, split, n_resamples=0, show_progress=False,
                    provenance={"run": "rarity control", "remedy": "rarity control"})
    source, target = _train_priors(control_root), _train_priors(root)
    return [partial(score, out_dir=out_dir / "control" / split),
            *(partial(score, out_dir=out_dir / "control_shift" / split / f"tau{tau:g}", logit_adjust=tau,
                      priors=source, target_priors=target) for tau in CONTROL_SHIFT_TAUS)]


def _train_and_score(control_config: dict[str, Any], jobs: Sequence[tuple[SweepSetting, dict[str, Any]]],
                     root: Path, runs_dir: Path, out_dir: Path, log: Callable[[str], None], workers: int) -> None:
    """Train the control (kept when this machine finished the same config) and score it and the τ grid,
    ``workers`` scorings at a time."""
    folder = out_dir / "rarity"
    main, main_cfg = main_job(jobs)
    weights = run_folder(main, main_cfg, out_dir / "results", runs_dir) / "final.safetensors"
    log(f"rarity control: {control_config['model']['name']} on {Path(control_config['data']['root']).name} "
        f"(accessories at presence 0.5) -> {control_config['out']}")
    control = train(control_config) / "final.safetensors"
    calls = []
    for split in SPLITS:
        calls += control_calls(control, control_config["data"]["root"], root, split, folder)
        calls += tau_norm_calls(weights, root, split, folder / "tau_norm" / split).values()
    run_calls(calls, workers)


def run_rarity_stage(plan: BenchmarkPlan, jobs: Sequence[tuple[SweepSetting, dict[str, Any]]], root: Path,
                     control_config: dict[str, Any] | None, runs_dir: Path, out_dir: Path, *,
                     log: Callable[[str], None]) -> list[str]:
    """Train and score what the rarity report needs (``control_config`` None, as under ``--reuse-results``:
    nothing, the records found under ``out_dir`` are used) and write the report. Returns what was skipped:
    empty when the report was written, else one note naming the first missing record."""
    if control_config is not None:
        _train_and_score(control_config, jobs, root, runs_dir, out_dir, log, plan.workers)
    folders = {split: _record_folders(plan, jobs, out_dir, split) for split in SPLITS}
    needed = [p for f in folders.values() for p in (*f["controls"].values(), f["longtail"], *f["remedies"].values())]
    missing = [p for p in needed if not (p / "record.json").is_file()]
    if missing:
        note = (f"rarity: report not written: {missing[0] / 'record.json'} is missing"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + "; run the benchmark without --reuse-results to train and score the rarity control")
        log(note)
        return [note]
    splits = {split: {"controls": {tau: load_record(p) for tau, p in f["controls"].items()},
                      "longtail": load_record(f["longtail"]),
                      "remedies": {k: load_record(p) for k, p in f["remedies"].items()}}
              for split, f in folders.items()}
    taxonomy = get_taxonomy(splits["test"]["longtail"].taxonomy)
    summary = write_rarity_report(splits["val"], splits["test"], taxonomy, out_dir, n_resamples=plan.n_resamples,
                                  seed=plan.seed)
    atomic_write_json(out_dir / "rarity" / "rarity.json", summary)
    goal = summary["goal"]
    log(f"rarity: control scored {summary['control']['scoring']}")
    log(f"rarity: val-chosen remedy {goal.get('chosen')}; test share of the tail-mean gap closed "
        f"{goal.get('test_share')}, goal met: {goal.get('met')}")
    return []
