"""The one-command benchmark on SynthFace-LT: data -> frequencies -> training -> evaluation with CIs
-> resolution sweep and speed -> leaderboard, long-tail analysis, every table and figure -> ``README.md``.

SynthFace-LT is generated once and cached; training runs (weights, checkpoints) live in a cache
folder, results (records, speed records, sweep rows) and the report under ``out_dir``.

A rerun trains every setting that *this machine* has not finished: a ``sweep.json`` that came with
the results folder (e.g. committed to git) without its weights in the local run cache is trained
again (:func:`lt_faceparse.experiments.sweep.finished_row`); an interrupted run resumes from its newest
checkpoint. ``reuse_results=True`` (``--reuse-results``) trains nothing: it takes the finished rows and
records under ``out_dir`` as they are, keeps their speed records, and re-renders the report.

Plans: :data:`QUICK` (CI smoke run), :data:`DEFAULT` (the 2-core CPU benchmark with the rarity control,
700 s measured), :data:`GPU` (one CUDA GPU, ``--device cuda``). Independent settings train side by
side in ``plan.workers`` processes (:mod:`lt_faceparse.experiments.parallel`); long-tail remedy settings
(``plan.remedies``) train SegFace with a ``longtail:`` config section at the same budget as plain.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console
from rich.markup import escape

from lt_faceparse.analysis.frequency import compute_class_frequencies, write_frequency_report
from lt_faceparse.atomic import atomic_write_json, read_json
from lt_faceparse.data import build_dataset
from lt_faceparse.data.synthetic import ensure_synthface
from lt_faceparse.engine.config import load_config
from lt_faceparse.engine.remedies import PLAIN, resolve_remedy, with_remedy
from lt_faceparse.errors import LTFaceParseError
from lt_faceparse.experiments.parallel import run_calls
from lt_faceparse.experiments.plans import BenchmarkPlan, recorded_plan, select_plan
from lt_faceparse.experiments.rarity_stage import run_rarity_stage
from lt_faceparse.experiments.shared_first_stage import run_with_shared_first_stage
from lt_faceparse.experiments.sweep import (TRAIN_ONLY, MissingResult, SweepSetting, config_fingerprint, evaluate_run,
                                            main_job, run_folder, run_setting, speed_only_rows)
from lt_faceparse.models import build_model
from lt_faceparse.reporting.rarity import CONTROL_PRESENCE
from lt_faceparse.reporting.readme import write_readme
from lt_faceparse.reporting.report import run_report
from lt_faceparse.speed.harness import device_name, measure_speed, save_speed

MAIN_CONFIG = "synth_segface_mobilenet"


def generate_data(plan: BenchmarkPlan, cache: Path) -> Path:
    """SynthFace-LT of the plan (generated once with every CPU, then reused from ``cache``), with the
    merged-label cache of every split built up front in parallel."""
    root = ensure_synthface(cache, num_images=plan.num_images, size=plan.image_size, seed=plan.seed,
                            splits=plan.splits, presence=dict(plan.presence) or None,
                            min_stroke=plan.accessory_stroke * plan.image_size / plan.resolution)
    for split in ("train", "val", "test"):
        build_dataset("celebamask-hq", root, split, resolution=None, merge="segface", num_workers=os.cpu_count() or 1)
    return root


def plan_config(plan: BenchmarkPlan, root: Path, model: str, kwargs: dict, resolution: int) -> dict[str, Any]:
    """The training config of one benchmark setting: the shipped SynthFace SegFace config, pointed at
    the generated data ``root`` (its own splits, hence ``synthetic: null``) and resized, with the
    default (plain) ``longtail`` section; remedy settings replace it (:func:`plan_settings`)."""
    cfg = load_config(MAIN_CONFIG)
    cfg["model"] = {"name": model, "kwargs": dict(kwargs)}
    cfg["data"].update(root=str(root), resolution=resolution, num_workers=plan.loader_workers, synthetic=None,
                       flip=plan.flip)
    cfg["optim"].update(lr=plan.lr, epochs=plan.epochs, milestones=list(plan.milestones))
    cfg["batch"] = {"global": plan.batch, "per_gpu": None, "accumulation": None}
    cfg["val"].update(every_epochs=0, protocol="input")
    cfg["precise_bn_batches"] = plan.precise_bn_batches
    cfg["precision"] = plan.precision
    cfg["device"] = plan.device
    cfg["seed"] = plan.seed
    cfg["log_every"] = 10
    return cfg


# relative training cost per image of each model at the same resolution (1-thread CPU, 64 px, two trainings
# side by side; SegFace-MobileNetV3 with the paper's 256-wide decoder = 1, with a 128-wide one 0.6: the decoder
# is two thirds of a 256-wide step); only orders the jobs, longest first
_RELATIVE_COST = {"segface": 1.0, "bisenet": 0.8, "segformer": 0.5, "fcn": 0.45}
_SEGFACE_WIDTH_COST = {256: 1.0, 128: 0.6}


def relative_cost(model: str, kwargs: dict[str, Any]) -> float:
    """Training cost per image of ``model`` built with ``kwargs``, relative to SegFace-MobileNetV3 (dim 256)."""
    if model == "segface":
        return _SEGFACE_WIDTH_COST.get(int(kwargs.get("dim", 256)), 1.0)
    return _RELATIVE_COST.get(model, 1.0)


def plan_settings(plan: BenchmarkPlan, root: Path) -> list[tuple[Any, dict[str, Any]]]:
    """Every training setting of the plan with its config: the main model's comparison setting first (the
    stages after training find the main model there), then longest first (the order they are handed to
    the workers): the model comparison at ``plan.resolution``, the main model with each remedy at the
    same budget (:func:`lt_faceparse.engine.remedies.resolve_remedy` of each name; the remedy's
    ``longtail`` section replaces the plain one), and the main model at the sweep resolutions."""
    main, main_kwargs = plan.models[0]
    jobs = [(SweepSetting("model", m, kw.get("backbone"), plan.resolution), plan_config(plan, root, m, kw, plan.resolution))
            for m, kw in plan.models]
    for name in plan.remedies:
        label, section = resolve_remedy(name)
        if label == PLAIN:
            raise ValueError(f"benchmark plan {plan.name!r}: 'plain' is not a remedy (the model comparison trains it)")
        jobs.append((SweepSetting("remedy", main, main_kwargs.get("backbone"), plan.resolution, remedy=label),
                     with_remedy(plan_config(plan, root, main, main_kwargs, plan.resolution), section)))
    for res in plan.sweep_resolutions:
        jobs.append((SweepSetting("resolution", main, main_kwargs.get("backbone"), res),
                     plan_config(plan, root, main, main_kwargs, res)))
    names = [s.name for s, _ in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"benchmark plan {plan.name!r} trains a setting twice: {names}")

    def order(job: tuple[Any, dict[str, Any]]) -> tuple[bool, float]:
        setting, cfg = job
        cost = relative_cost(setting.model, cfg["model"]["kwargs"]) * (setting.resolution / plan.resolution) ** 2
        return job is not jobs[0], -cost

    return sorted(jobs, key=order)


def score_posthoc(plan: BenchmarkPlan, jobs: list[tuple[Any, dict[str, Any]]], results: Path, runs_dir: Path,
                  log: Callable[[str], None]) -> None:
    """Score the plain main model's weights again with each of ``plan.posthoc``'s options, on val (where
    choices are made) and test: records under ``results/<main setting>-<label>/{val,test}/``, with
    provenance ``posthoc`` and ``remedy`` = the label (compared with plain by the long-tail analysis)."""
    main = plan.models[0][0]
    setting, cfg = next((s, c) for s, c in jobs if s.axis == "model" and s.model == main)
    run_dir = run_folder(setting, cfg, results, runs_dir)
    for label, options in plan.posthoc:
        unknown = set(options) - {"logit_adjust", "tta"}
        if unknown or not options:
            raise ValueError(f"benchmark plan {plan.name!r}: post-hoc option {label!r} must set logit_adjust and/or "
                             f"tta, got {sorted(options)}")
    calls, names = [], []
    for label, options in plan.posthoc:
        folder = results / f"{setting.name}-{label}"
        for split in ("val", "test"):
            calls.append(partial(evaluate_run, run_dir, cfg, folder / split, split=split, device=cfg["device"],
                                 n_resamples=plan.n_resamples, extra={"run": folder.name, "remedy": label}, **options))
            names.append(f"{folder.name}: {split}")
    for name, record in zip(names, run_calls(calls, plan.workers)):
        log(f"{name} mean F1 {100 * record.mean_f1:.2f} ({record.num_images} images)")


def default_cache() -> Path:
    base = os.environ.get("LT_FACEPARSE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "lt_faceparse"


def run_benchmark(out_dir: str | Path, quick: bool = False, *, cache_dir: str | Path | None = None,
                  plan: BenchmarkPlan | None = None, threads: int | None = 1, workers: int | None = None,
                  device: str | None = None, reuse_results: bool = False,
                  log: Callable[[str], None] | None = None) -> Path:
    """Run the whole benchmark and write its report under ``out_dir``; return ``out_dir``.

    ``plan``: default :func:`select_plan` of ``quick`` and ``device`` (with ``reuse_results``: the plan
    recorded in ``out_dir/benchmark.json``, so the report is re-rendered on the data, frequencies and
    settings the results were made with). ``threads``: torch intra-op
    threads of this process and of each training worker (None: torch's default). One thread is the
    default because small models gain little from a second one; the cores are used by training
    ``workers`` settings side by side (default: the plan's). ``reuse_results``: train nothing, take
    the finished results under ``out_dir`` as they are (see the module docstring).
    """
    if plan is None and reuse_results and not quick:  # re-render with the plan that trained the results
        plan = recorded_plan(out_dir)
    plan = plan or select_plan(quick=quick, device=device)
    if device is not None and device != plan.device:
        plan = dataclasses.replace(plan, device=device)
    if workers is not None:
        plan = dataclasses.replace(plan, workers=max(1, int(workers)))
    if plan.device == "cuda" and not torch.cuda.is_available() and not reuse_results:
        raise LTFaceParseError(f"benchmark plan {plan.name!r} trains on CUDA, but torch sees no CUDA device")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_benchmark(out_dir, plan, quick, cache_dir, threads, reuse_results, log)
    finally:
        torch.set_num_threads(previous_threads)


def rarity_control_config(plan: BenchmarkPlan, cache: Path, runs_dir: Path) -> dict[str, Any]:
    """The training config of the rarity control: the plan's main model and schedule on SynthFace-LT of the
    same generator, seed and sizes with every accessory at presence 0.5 (generated here when missing)."""
    presence = dict(plan.presence)
    presence.update(CONTROL_PRESENCE)
    root = generate_data(dataclasses.replace(plan, presence=tuple(sorted(presence.items()))), cache / "synthface")
    main, kwargs = plan.models[0]
    cfg = plan_config(plan, root, main, kwargs, plan.resolution)
    cfg["out"] = str(runs_dir / "rarity_control" / f"run-{config_fingerprint(cfg)}")
    cfg["resume"] = "auto"  # a finished run is kept, an interrupted one resumes
    return cfg


def _with_control(jobs: list, control: dict[str, Any] | None) -> list:
    """The training jobs with the rarity control first (it is as long as the longest; trained only, its
    stage scores it on the long-tail images: :func:`lt_faceparse.experiments.rarity_stage.run_rarity_stage`)."""
    if control is None:
        return jobs
    main = main_job(jobs)[0]
    return [(SweepSetting(TRAIN_ONLY, main.model, main.backbone, main.resolution, remedy="rarity_control"), control),
            *jobs]


def prune_other_results(plan: BenchmarkPlan, jobs: list, results: Path, log: Callable[[str], None]) -> list[str]:
    """Delete the result folders under ``results`` of settings this plan does not have (left by a run of
    another plan, or of this plan before it changed), so that the report holds this plan's settings only;
    returns their names."""
    main = main_job(jobs)[0].name
    wanted = {s.name for s, _ in jobs} | {f"{main}-{label}" for label, _ in plan.posthoc} | {"speed"}
    stale = sorted(p.name for p in results.glob("*") if p.is_dir() and p.name not in wanted
                   and ((p / "sweep.json").is_file() or (p / "test" / "record.json").is_file()))
    for name in stale:
        shutil.rmtree(results / name)
    if stale:
        log(f"removed the results of settings outside plan {plan.name!r}: {', '.join(stale)}")
    return stale


def _train_and_evaluate(plan: BenchmarkPlan, jobs: list, control: dict[str, Any] | None, results: Path, runs_dir: Path,
                        threads: int | None, reuse_results: bool, skipped: list[str],
                        log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every setting's row: trained (the rarity control too) and scored, or with ``reuse_results`` read
    back from ``results`` (a missing one is noted in ``skipped``)."""
    if reuse_results:
        rows = []
        for setting, cfg in jobs:
            try:
                rows.append(run_setting(setting, cfg, results, reuse="results", runs_dir=runs_dir, log=log))
            except MissingResult as err:
                skipped.append(str(err))
                log(str(err))
        return rows
    jobs = _with_control(jobs, control)
    log(f"training {len(jobs)} settings, {plan.workers} at a time: " + ", ".join(s.name for s, _ in jobs))
    rows = run_with_shared_first_stage(jobs, results, workers=plan.workers, threads=threads, runs_dir=runs_dir,
                                       log=log, speed_runs=0, n_resamples=plan.n_resamples)
    return [row for row in rows if row.get("axis") != TRAIN_ONLY]


def _run_benchmark(out_dir: str | Path, plan: BenchmarkPlan, quick: bool, cache_dir: str | Path | None,
                   threads: int | None, reuse_results: bool, log: Callable[[str], None] | None) -> Path:
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    runs_dir = cache / "benchmark_runs" / plan.name
    results = out_dir / "results"
    log = log or _console_log()
    timings: dict[str, float] = {}
    skipped: list[str] = []
    load_start = _load_average()
    info_path = out_dir / "benchmark.json"
    previous = read_json(info_path, "benchmark info") if info_path.is_file() else None
    start = time.perf_counter()

    def stage(name: str):
        return _Stage(name, timings, log)

    with stage("data"):
        root = generate_data(plan, cache / "synthface")
        log(f"SynthFace-LT: {root}")
        control = rarity_control_config(plan, cache, runs_dir) if plan.rarity_control and not reuse_results else None
    with stage("frequencies"):
        train_set = build_dataset("celebamask-hq", root, "train", resolution=None, merge="segface")
        table = compute_class_frequencies(train_set)
        table.summary["data_format"] = "celebamask-hq"
        write_frequency_report(table, out_dir / "frequencies")
    jobs = plan_settings(plan, root)
    prune_other_results(plan, jobs, results, log)
    with stage("train+eval"):
        rows = _train_and_evaluate(plan, jobs, control, results, runs_dir, threads, reuse_results, skipped, log)
    if plan.posthoc and not reuse_results:
        with stage("post-hoc"):
            score_posthoc(plan, jobs, results, runs_dir, log)
    if plan.rarity_control:
        with stage("rarity"):
            skipped += run_rarity_stage(plan, jobs, root, control, runs_dir, out_dir, log=log)
    if reuse_results:
        skipped.append("speed: not measured (--reuse-results keeps the speed records found under results/)")
    else:
        with stage("speed"):
            _time_settings(plan, rows, results / "speed", train_set.taxonomy.num_classes)
    with stage("report"):
        outputs = run_report(results, out_dir, freq=out_dir / "frequencies", examples=plan.examples,
                             n_resamples=plan.n_resamples, data_root=str(root),
                             device=plan.device if torch.cuda.is_available() else "cpu")
    timings["total"] = round(time.perf_counter() - start, 1)
    flag = "--quick " if quick else ("" if plan.name == "default" else f"--plan {plan.name} ")
    info = {
        "plan": asdict(plan),
        "command": f"lt-faceparse benchmark {flag}--out {out_dir}" + (" --reuse-results" if reuse_results else ""),
        "reused_results": reuse_results,
        "timings_s": timings,
        "settings": [_setting_summary(r) for r in rows],
        "data_root": str(root),
        "runs_dir": str(runs_dir),
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "workers": plan.workers, "worker_threads": threads,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "load_average_1_5_15_min": {"start": load_start, "end": _load_average()},
                    "python": platform.python_version(), "torch": torch.__version__},
        "skipped": [*skipped, *outputs.skipped],
    }
    if reuse_results and previous is not None:  # keep the record of the run that trained the results
        info["trained_by"] = previous.get("trained_by") or {k: previous.get(k) for k in
                                                           ("command", "plan", "timings_s", "settings", "machine")}
    atomic_write_json(info_path, info)

    outputs.skipped[:0] = skipped
    write_readme(out_dir, outputs, info)
    log(f"benchmark done in {timings['total']:.0f} s -> {out_dir}")
    return out_dir


def _time_settings(plan: BenchmarkPlan, rows: list[dict[str, Any]], speed_dir: Path, num_classes: int) -> None:
    """Time every model untrained, back to back, after training (so that the FPS of one table share one
    quiet time window): batch 1 fp32 at the speed resolutions and every trained resolution, a full
    batch at the plan's resolution (bf16 on CUDA), and the timing-only SegFace backbones."""
    device = plan.device
    for model, kwargs in plan.models:
        net = build_model(model, num_classes=num_classes, **kwargs)
        trained = sorted({r["resolution"] for r in rows if r["model"] == model})
        info = {"model": model, "backbone": kwargs.get("backbone"), "trained": False}
        for res in sorted({*plan.speed_resolutions, *trained}):
            save_speed(measure_speed(net, res, 1, device, warmup=2, runs=plan.speed_runs, info=info), speed_dir)
        dtype = "bf16" if device == "cuda" else "fp32"
        save_speed(measure_speed(net, plan.resolution, plan.batch, device, dtype=dtype, warmup=1,
                                 runs=plan.speed_runs, info=info), speed_dir)
        del net
    builders = [("segface", b, partial(build_model, "segface", num_classes=num_classes, backbone=b))
                for b in plan.speed_backbones]
    speed_only_rows(builders, plan.resolution, device=device, runs=plan.speed_runs, out_dir=speed_dir)


def _setting_summary(row: dict[str, Any]) -> dict[str, Any]:
    """What benchmark.json keeps of a sweep row: training time and the val/test scores behind choices."""
    val = row.get("val") or {}
    return {"name": row["name"], "remedy": row.get("remedy", "plain"), "train_seconds": row.get("train_seconds"),
            "epoch_seconds": row.get("epoch_seconds"), "train_images": row.get("train_images"),
            "val_mean_f1": val.get("mean_f1"), "val_head_mean_f1": val.get("head_mean_f1"),
            "val_tail_mean_f1": val.get("tail_mean_f1"), "test_mean_f1": row.get("mean_f1")}


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _cpu_name() -> str:
    return device_name(torch.device("cpu"))


class _Stage:
    def __init__(self, name: str, timings: dict[str, float], log: Callable[[str], None]):
        self.name, self.timings, self.log = name, timings, log

    def __enter__(self):
        self.tic = time.perf_counter()
        self.log(f"[{self.name}] ...")
        return self

    def __exit__(self, *exc):
        self.timings[self.name] = round(time.perf_counter() - self.tic, 1)
        if exc[0] is None:
            self.log(f"[{self.name}] done in {self.timings[self.name]:.1f} s")
        return False


def _console_log() -> Callable[[str], None]:
    console = Console(file=sys.stderr)

    return lambda msg: console.log(escape(msg))
