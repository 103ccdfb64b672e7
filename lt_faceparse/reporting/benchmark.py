"""The one-command benchmark on SynthFace-LT: data -> frequencies -> training -> evaluation with CIs
-> resolution sweep and speed -> leaderboard, long-tail analysis, every table and figure -> ``README.md``.

SynthFace-LT is generated once and cached; training runs (weights, checkpoints) live in a cache
folder, results (records, speed records, sweep rows) and the report under ``out_dir``.

A rerun trains every setting that *this machine* has not finished: a ``sweep.json`` that came with
the results folder (e.g. committed to git) without its weights in the local run cache is trained
again (:func:`lt_faceparse.reporting.sweep.finished_row`); an interrupted run resumes from its newest
checkpoint. ``reuse_results=True`` (``--reuse-results``) trains nothing: it takes the finished rows and
records under ``out_dir`` as they are, keeps their speed records, and re-renders the report.

Plans: :data:`QUICK` (CI smoke run), :data:`DEFAULT` (the 2-core CPU benchmark, about 13 minutes on
an idle machine), :data:`GPU` (one CUDA GPU, ``--device cuda``). Independent settings train side by
side in ``plan.workers`` processes (:mod:`lt_faceparse.reporting.parallel`); long-tail remedy settings
(``plan.remedies``) train SegFace with a ``longtail:`` config section at the same budget as plain.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

from lt_faceparse.atomic import atomic_write_json
from lt_faceparse.errors import LTFaceParseError

MAIN_CONFIG = "synth_segface_mobilenet"


@dataclass(frozen=True)
class BenchmarkPlan:
    """Sizes and schedule of one benchmark run."""

    name: str
    num_images: int  # SynthFace-LT images over all splits
    image_size: int  # generated image side (px)
    splits: tuple[float, float, float]  # train / val / test fractions
    resolution: int  # training and scoring resolution of the model comparison
    epochs: int
    milestones: tuple[int, ...]
    batch: int
    lr: float
    models: tuple[tuple[str, dict], ...]  # (registry name, constructor kwargs); the first is the main model
    sweep_resolutions: tuple[int, ...]  # the main model also trained at these resolutions (Table 2b)
    speed_resolutions: tuple[int, ...]  # timing only (FPS vs resolution)
    speed_backbones: tuple[str, ...]  # SegFace backbones timed untrained (Table 2a)
    speed_runs: int
    n_resamples: int
    examples: int
    seed: int = 0
    notes: str = ""
    # long-tail remedies the main model is trained again with, at the same budget: shipped remedy names
    # (lt_faceparse/configs/longtail/, parameters chosen on val) or YAML files with a ``longtail`` section
    remedies: tuple[str, ...] = ()
    # post-hoc options the plain main model is scored again with, on val and test: (label,
    # {"logit_adjust": tau} and/or {"tta": "flip"}) (:func:`lt_faceparse.longtail.posthoc.apply_posthoc`)
    posthoc: tuple[tuple[str, dict], ...] = ()
    presence: tuple[tuple[str, float], ...] = ()  # SynthFace-LT presence overrides (empty: DEFAULT_PRESENCE)
    device: str = "cpu"  # cpu | cuda
    precision: str = "fp32"  # training precision (fp32 | bf16 | fp16; autocast on CUDA only)
    workers: int = 1  # settings trained side by side (processes; one torch thread each on a CPU)
    loader_workers: int = 0  # data-loader processes per training
    precise_bn_batches: int = 20  # BatchNorm statistics re-estimated on this many training batches
    # train the rarity control and write the rarity-gap report (lt_faceparse.reporting.rarity_stage)
    rarity_control: bool = True


# MobileNetV3-Large through timm: the same architecture and parameter count as torchvision's (the
# paper's "MobileNet V3", 7.034 M), but with BatchNorm momentum 0.1. Torchvision's uses 0.01, so after
# the ~100 optimizer steps of a CPU run from scratch its running statistics are still mostly their
# initial values and eval-mode predictions collapse (measured here: 9% pixel accuracy in eval mode
# against 84% in train mode on the training images, val mean F1 1% against 16% with timm's).
BACKBONE = "timm/mobilenetv3_large_100"
_MODELS = (
    ("segface", {"backbone": BACKBONE, "fusion": True, "pretrained": False}),
    ("fcn", {"backbone": BACKBONE, "pretrained": False}),
    ("segformer", {"backbone": BACKBONE, "pretrained": False}),
    ("bisenet", {}),
)

# One remedy of each kind, with the parameters chosen on SynthFace-LT val (lt_faceparse/configs/longtail/):
# an augmentation (copy-paste), a loss (logit-adjusted CE) and a sampler (repeat-factor, same epoch size);
# and the two post-hoc options on the plain model (logit adjustment with Menon et al.'s tau = 1, flip TTA).
_REMEDIES = ("copy_paste", "logit_adjusted", "repeat_factor")
_POSTHOC = (("posthoc_la", {"logit_adjust": 1.0}), ("flip_tta", {"tta": "flip"}))

QUICK = BenchmarkPlan(
    name="quick", num_images=80, image_size=64, splits=(0.6, 0.1, 0.3), resolution=64, epochs=2,
    milestones=(2,), batch=8, lr=2e-3, models=_MODELS[:2], sweep_resolutions=(), speed_resolutions=(64, 128),
    speed_backbones=(), speed_runs=3, n_resamples=200, examples=2, workers=2, remedies=("copy_paste",),
    posthoc=(("flip_tta", {"tta": "flip"}),),
    notes="smoke run: every stage on a few images; the numbers mean nothing",
)

# 2-core CPU, about 13 minutes on an idle machine (781 s measured) with three remedies (about 6 without them), every
# number measured on val (SegFace plain, see DESIGN.md "Choosing the CPU plan"): 64 px input (96 px
# gave a lower val head mean F1 at the same compute: fewer steps), batch 8 (batch 4: more steps but
# noisy BatchNorm statistics, val head 49-53 against 56-58), AdamW lr 2e-3 (4e-3: head 53 against 62),
# 1,200 training images seen 4 times rather than fewer images more often; 600 test images hold about
# 40 eyeglasses, 33 hats, 150 earrings and 27 necklaces for the bootstrap.
DEFAULT = BenchmarkPlan(
    name="default", num_images=2000, image_size=96, splits=(0.6, 0.1, 0.3), resolution=64, epochs=4,
    milestones=(3,), batch=8, lr=2e-3, models=_MODELS, sweep_resolutions=(32,),
    speed_resolutions=(64, 128, 256, 512), speed_backbones=("mobilenet", "resnet101", "efficientnet", "swin_base"),
    speed_runs=10, n_resamples=1000, examples=4, workers=2, remedies=_REMEDIES, posthoc=_POSTHOC,
    notes=("2-core CPU budget: every model and remedy trained from scratch (no ImageNet weights) with the same "
           "schedule, two settings side by side (one torch thread each); MobileNetV3-Large through timm "
           "(BatchNorm momentum 0.1, see benchmark.py), BatchNorm statistics re-estimated on 20 training batches "
           "after the last epoch"),
)

# One H100/H200 in under 10 minutes (not run yet; the sizing is in DESIGN.md "The GPU plan"): 256 px,
# bf16 autocast, 6,000 images generated in parallel (4,800 train), 8 epochs at batch 32, two trainings
# sharing the GPU.
GPU = BenchmarkPlan(
    name="gpu", num_images=6000, image_size=256, splits=(0.8, 0.05, 0.15), resolution=256, epochs=8,
    milestones=(6,), batch=32, lr=2e-3, models=_MODELS, sweep_resolutions=(128,),
    speed_resolutions=(64, 128, 256, 512), speed_backbones=("mobilenet", "resnet101", "efficientnet", "swin_base"),
    speed_runs=20, n_resamples=1000, examples=4, device="cuda", precision="bf16", workers=2, loader_workers=6,
    remedies=_REMEDIES, posthoc=_POSTHOC,
    notes="one CUDA GPU, bf16 autocast, every model from scratch with the same schedule",
)

PLANS = {"quick": QUICK, "default": DEFAULT, "gpu": GPU}


def select_plan(*, quick: bool = False, device: str | None = None, name: str | None = None) -> BenchmarkPlan:
    """The plan of a command line: ``name`` if given, else ``quick``, else by device (cuda -> gpu)."""
    if name is not None:
        if name not in PLANS:
            raise ValueError(f"unknown benchmark plan {name!r}; plans: {', '.join(PLANS)}")
        return PLANS[name]
    if quick:
        return QUICK
    return GPU if device == "cuda" else DEFAULT


def plan_from_dict(data: dict[str, Any]) -> BenchmarkPlan:
    """The plan recorded in a ``benchmark.json`` (``asdict`` form; fields it lacks take their defaults)."""
    known = {f.name for f in dataclasses.fields(BenchmarkPlan)}
    kwargs = {k: v for k, v in data.items() if k in known}
    for key in ("splits", "milestones", "sweep_resolutions", "speed_resolutions", "speed_backbones", "remedies"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    for key in ("models", "posthoc", "presence"):
        if key in kwargs:
            kwargs[key] = tuple(tuple(item) for item in kwargs[key])
    return BenchmarkPlan(**kwargs)


def recorded_plan(out_dir: str | Path) -> BenchmarkPlan | None:
    """The plan that produced the results under ``out_dir`` (its ``benchmark.json``), or None."""
    from lt_faceparse.atomic import read_json

    path = Path(out_dir) / "benchmark.json"
    if not path.is_file():
        return None
    info = read_json(path, "benchmark info")
    trained = info.get("trained_by") or {}
    plan = trained.get("plan") or info.get("plan")
    return plan_from_dict(plan) if plan else None


def generate_data(plan: BenchmarkPlan, cache: Path) -> Path:
    """SynthFace-LT of the plan (generated once with every CPU, then reused from ``cache``), with the
    merged-label cache of every split built up front in parallel."""
    from lt_faceparse.data import build_dataset
    from lt_faceparse.data.synthetic import ensure_synthface

    root = ensure_synthface(cache, num_images=plan.num_images, size=plan.image_size, seed=plan.seed,
                            splits=plan.splits, presence=dict(plan.presence) or None)
    for split in ("train", "val", "test"):
        build_dataset("celebamask-hq", root, split, resolution=None, merge="segface", num_workers=os.cpu_count() or 1)
    return root


def plan_config(plan: BenchmarkPlan, root: Path, model: str, kwargs: dict, resolution: int) -> dict[str, Any]:
    """The training config of one benchmark setting: the shipped SynthFace SegFace config, pointed at
    the generated data ``root`` (its own splits, hence ``synthetic: null``) and resized, with the
    default (plain) ``longtail`` section; remedy settings replace it (:func:`plan_settings`)."""
    from lt_faceparse.engine.config import load_config

    cfg = load_config(MAIN_CONFIG)
    cfg["model"] = {"name": model, "kwargs": dict(kwargs)}
    cfg["data"].update(root=str(root), resolution=resolution, num_workers=plan.loader_workers, synthetic=None)
    cfg["optim"].update(lr=plan.lr, epochs=plan.epochs, milestones=list(plan.milestones))
    cfg["batch"] = {"global": plan.batch, "per_gpu": None, "accumulation": None}
    cfg["val"].update(every_epochs=0, protocol="input")
    cfg["precise_bn_batches"] = plan.precise_bn_batches
    cfg["precision"] = plan.precision
    cfg["device"] = plan.device
    cfg["seed"] = plan.seed
    cfg["log_every"] = 10
    return cfg


# relative training cost per image of each model at the same resolution (1-thread CPU, 64 px,
# measured: SegFace-MobileNetV3 32 ms, BiSeNet 21, SegFormer head 16, FCN 14); only orders the jobs
_RELATIVE_COST = {"segface": 1.0, "bisenet": 0.65, "segformer": 0.5, "fcn": 0.45}


def plan_settings(plan: BenchmarkPlan, root: Path) -> list[tuple[Any, dict[str, Any]]]:
    """Every training setting of the plan with its config, longest first (the order they are handed to
    the workers): the model comparison at ``plan.resolution``, the main model with each remedy at the
    same budget (:func:`lt_faceparse.longtail.remedies.resolve_remedy` of each name; the remedy's
    ``longtail`` section replaces the plain one), and the main model at the sweep resolutions."""
    from lt_faceparse.longtail.remedies import PLAIN, resolve_remedy, with_remedy
    from lt_faceparse.reporting.sweep import SweepSetting

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

    def cost(job: tuple[Any, dict[str, Any]]) -> float:
        setting = job[0]
        return _RELATIVE_COST.get(setting.model, 1.0) * (setting.resolution / plan.resolution) ** 2

    return sorted(jobs, key=cost, reverse=True)


def score_posthoc(plan: BenchmarkPlan, jobs: list[tuple[Any, dict[str, Any]]], results: Path, runs_dir: Path,
                  log: Callable[[str], None]) -> None:
    """Score the plain main model's weights again with each of ``plan.posthoc``'s options, on val (where
    choices are made) and test: records under ``results/<main setting>-<label>/{val,test}/``, with
    provenance ``posthoc`` and ``remedy`` = the label (compared with plain by the long-tail analysis)."""
    from lt_faceparse.reporting.sweep import evaluate_run, run_folder

    main = plan.models[0][0]
    setting, cfg = next((s, c) for s, c in jobs if s.axis == "model" and s.model == main)
    run_dir = run_folder(setting, cfg, results, runs_dir)
    for label, options in plan.posthoc:
        unknown = set(options) - {"logit_adjust", "tta"}
        if unknown or not options:
            raise ValueError(f"benchmark plan {plan.name!r}: post-hoc option {label!r} must set logit_adjust and/or "
                             f"tta, got {sorted(options)}")
        folder = results / f"{setting.name}-{label}"
        extra = {"run": folder.name, "remedy": label}
        for split in ("val", "test"):
            record, _ = evaluate_run(run_dir, cfg, folder / split, split=split, device=cfg["device"],
                                     n_resamples=plan.n_resamples, extra=extra, **options)
            log(f"{folder.name}: {split} mean F1 {100 * record.mean_f1:.2f} ({record.num_images} images)")


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
    import torch

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


def _run_benchmark(out_dir: str | Path, plan: BenchmarkPlan, quick: bool, cache_dir: str | Path | None,
                   threads: int | None, reuse_results: bool, log: Callable[[str], None] | None) -> Path:
    import torch

    from lt_faceparse.analysis.frequency import compute_class_frequencies, write_frequency_report
    from lt_faceparse.atomic import read_json
    from lt_faceparse.data import build_dataset
    from lt_faceparse.reporting.parallel import run_settings
    from lt_faceparse.reporting.report import run_report
    from lt_faceparse.reporting.sweep import MissingResult, run_setting

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
    with stage("frequencies"):
        train_set = build_dataset("celebamask-hq", root, "train", resolution=None, merge="segface")
        table = compute_class_frequencies(train_set)
        table.summary["data_format"] = "celebamask-hq"
        write_frequency_report(table, out_dir / "frequencies")
    jobs = plan_settings(plan, root)
    with stage("train+eval"):
        if reuse_results:
            rows = []
            for setting, cfg in jobs:
                try:
                    rows.append(run_setting(setting, cfg, results, reuse="results", runs_dir=runs_dir, log=log))
                except MissingResult as err:
                    skipped.append(str(err))
                    log(str(err))
        else:
            log(f"training {len(jobs)} settings, {plan.workers} at a time: " + ", ".join(s.name for s, _ in jobs))
            rows = run_settings(jobs, results, workers=plan.workers, threads=threads, runs_dir=runs_dir, log=log,
                                speed_runs=0, n_resamples=plan.n_resamples)
    if plan.posthoc and not reuse_results:
        with stage("post-hoc"):
            score_posthoc(plan, jobs, results, runs_dir, log)
    if plan.rarity_control:
        from lt_faceparse.reporting.rarity_stage import run_rarity_stage

        with stage("rarity"):
            run_rarity_stage(plan, jobs, root, cache, runs_dir, out_dir, reuse_results=reuse_results, log=log)
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
    from lt_faceparse.reporting.readme import write_readme

    outputs.skipped[:0] = skipped
    write_readme(out_dir, outputs, info)
    log(f"benchmark done in {timings['total']:.0f} s -> {out_dir}")
    return out_dir


def _time_settings(plan: BenchmarkPlan, rows: list[dict[str, Any]], speed_dir: Path, num_classes: int) -> None:
    """Time every model untrained, back to back, after training (so that the FPS of one table share one
    quiet time window): batch 1 fp32 at the speed resolutions and every trained resolution, a full
    batch at the plan's resolution (bf16 on CUDA), and the timing-only SegFace backbones."""
    from lt_faceparse.models import build_model
    from lt_faceparse.reporting.sweep import speed_only_rows
    from lt_faceparse.speed import measure_speed, save_speed

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
    from lt_faceparse.speed import device_name

    import torch

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
    from rich.console import Console

    console = Console(file=sys.stderr)
    from rich.markup import escape

    return lambda msg: console.log(escape(msg))
