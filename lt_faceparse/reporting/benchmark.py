"""The one-command benchmark on SynthFace-LT: data -> frequencies -> training -> evaluation with CIs
-> resolution sweep and speed -> leaderboard -> every table and figure -> ``README.md``.

Everything runs on a CPU. SynthFace-LT is generated once and cached; training runs (weights,
checkpoints) live in a cache folder, results (records, speed records, sweep rows) and the report
under ``out_dir``. Finished settings are skipped on a rerun, so an interrupted benchmark resumes.
The two plans, :data:`QUICK` (CI smoke run) and :data:`DEFAULT`, are sized for a 2-core CPU.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

from lt_faceparse.atomic import atomic_write_json

MAIN_CONFIG = "synth_segface_mobilenet"


@dataclass(frozen=True)
class BenchmarkPlan:
    """Sizes of one benchmark run (all small enough for a CPU)."""

    name: str
    num_images: int  # SynthFace-LT images over all splits
    image_size: int  # generated image side (px)
    splits: tuple[float, float, float]  # train / val / test fractions
    resolution: int  # training and scoring resolution of the model comparison
    epochs: int
    milestones: tuple[int, ...]
    batch: int
    lr: float
    models: tuple[tuple[str, dict], ...]  # (registry name, constructor kwargs)
    sweep_resolutions: tuple[int, ...]  # SegFace also trained at these resolutions (Table 2b)
    speed_resolutions: tuple[int, ...]  # timing only (FPS vs resolution)
    speed_backbones: tuple[str, ...]  # SegFace backbones timed untrained (Table 2a)
    speed_runs: int
    n_resamples: int
    examples: int
    seed: int = 0
    notes: str = ""


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

QUICK = BenchmarkPlan(
    name="quick", num_images=80, image_size=64, splits=(0.6, 0.1, 0.3), resolution=64, epochs=2,
    milestones=(2,), batch=8, lr=2e-3, models=_MODELS[:2], sweep_resolutions=(), speed_resolutions=(64, 128),
    speed_backbones=(), speed_runs=3, n_resamples=200, examples=2,
    notes="smoke run: every stage on a few images; the numbers mean nothing",
)

DEFAULT = BenchmarkPlan(
    name="default", num_images=240, image_size=96, splits=(0.6, 0.1, 0.3), resolution=64, epochs=16,
    milestones=(13,), batch=8, lr=2e-3, models=_MODELS, sweep_resolutions=(32, 96),
    speed_resolutions=(64, 128, 256, 512), speed_backbones=("mobilenet", "resnet101", "efficientnet", "swin_base"),
    speed_runs=10, n_resamples=1000, examples=4,
    notes=("small CPU budget: every model trained from scratch (no ImageNet weights) with the same schedule; "
           "MobileNetV3-Large through timm (BatchNorm momentum 0.1, see benchmark.py), BatchNorm statistics "
           "re-estimated on training batches after the last epoch (precise_bn_batches of the shipped config)"),
)

PLANS = {"quick": QUICK, "default": DEFAULT}


def generate_data(plan: BenchmarkPlan, cache: Path) -> Path:
    """SynthFace-LT of the plan (generated once, then reused from ``cache``)."""
    from lt_faceparse.data.synthetic import ensure_synthface

    return ensure_synthface(cache, num_images=plan.num_images, size=plan.image_size, seed=plan.seed,
                            splits=plan.splits)


def plan_config(plan: BenchmarkPlan, root: Path, model: str, kwargs: dict, resolution: int) -> dict[str, Any]:
    """The training config of one benchmark setting: the shipped SynthFace SegFace config, pointed at
    the generated data ``root`` (its own splits, hence ``synthetic: null``) and resized."""
    from lt_faceparse.engine.config import load_config

    cfg = load_config(MAIN_CONFIG)
    cfg["model"] = {"name": model, "kwargs": dict(kwargs)}
    cfg["data"].update(root=str(root), resolution=resolution, num_workers=0, synthetic=None)
    cfg["optim"].update(lr=plan.lr, epochs=plan.epochs, milestones=list(plan.milestones))
    cfg["batch"] = {"global": plan.batch, "per_gpu": None, "accumulation": None}
    cfg["val"].update(every_epochs=0, protocol="input")
    cfg["device"] = "cpu"
    cfg["seed"] = plan.seed
    cfg["log_every"] = 10
    return cfg


def default_cache() -> Path:
    base = os.environ.get("LT_FACEPARSE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "lt_faceparse"


def run_benchmark(out_dir: str | Path, quick: bool = False, *, cache_dir: str | Path | None = None,
                  plan: BenchmarkPlan | None = None, threads: int | None = 1,
                  log: Callable[[str], None] | None = None) -> Path:
    """Run the whole benchmark and write its report under ``out_dir``; return ``out_dir``.

    ``threads``: torch intra-op threads for the whole run (None: torch's default). One thread is
    the default because small models gain little from a second one, and on a shared machine
    oversubscribed threads slow training down by an order of magnitude (measured here).
    """
    import torch

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_benchmark(out_dir, quick, cache_dir, plan, log)
    finally:
        torch.set_num_threads(previous_threads)


def _run_benchmark(out_dir: str | Path, quick: bool, cache_dir: str | Path | None, plan: BenchmarkPlan | None,
                   log: Callable[[str], None] | None) -> Path:
    import torch

    from lt_faceparse.analysis.frequency import compute_class_frequencies, write_frequency_report
    from lt_faceparse.data import build_dataset
    from lt_faceparse.models import build_model
    from lt_faceparse.reporting.report import run_report
    from lt_faceparse.reporting.sweep import SweepSetting, run_setting, speed_only_rows
    from lt_faceparse.speed import measure_speed, save_speed

    plan = plan or (QUICK if quick else DEFAULT)
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    runs_dir = cache / "benchmark_runs" / plan.name
    results = out_dir / "results"
    log = log or _console_log()
    timings: dict[str, float] = {}
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
    rows = []
    with stage("train+eval (model comparison)"):
        for model, kwargs in plan.models:
            cfg = plan_config(plan, root, model, kwargs, plan.resolution)
            setting = SweepSetting("model", model, kwargs.get("backbone"), plan.resolution)
            rows.append(run_setting(setting, cfg, results, speed_runs=plan.speed_runs, n_resamples=plan.n_resamples,
                                    runs_dir=runs_dir, log=log))
    with stage("train+eval (resolution sweep)"):
        model, kwargs = plan.models[0]
        for res in plan.sweep_resolutions:
            cfg = plan_config(plan, root, model, kwargs, res)
            setting = SweepSetting("resolution", model, kwargs.get("backbone"), res)
            rows.append(run_setting(setting, cfg, results, speed_runs=plan.speed_runs, n_resamples=plan.n_resamples,
                                    runs_dir=runs_dir, log=log))
    with stage("speed"):
        speed_dir = results / "speed"
        num_classes = train_set.taxonomy.num_classes
        # every setting is timed again here, back to back, so that the FPS of one table share one time
        # window on a shared machine (the tables use the newest measurement of each setting)
        for model, kwargs in plan.models:
            net = build_model(model, num_classes=num_classes, **kwargs)
            trained = sorted({r["resolution"] for r in rows if r["model"] == model})
            for res in sorted({*plan.speed_resolutions, *trained}):
                result = measure_speed(net, res, 1, "cpu", warmup=2, runs=plan.speed_runs,
                                       info={"model": model, "backbone": kwargs.get("backbone"), "trained": False})
                save_speed(result, speed_dir)
            result = measure_speed(net, plan.resolution, 8, "cpu", warmup=1, runs=plan.speed_runs,
                                   info={"model": model, "backbone": kwargs.get("backbone"), "trained": False})
            save_speed(result, speed_dir)
            del net
        builders = [("segface", b, partial(build_model, "segface", num_classes=num_classes, backbone=b))
                    for b in plan.speed_backbones]
        speed_only_rows(builders, plan.resolution, runs=plan.speed_runs, out_dir=speed_dir)
    with stage("report"):
        outputs = run_report(results, out_dir, freq=out_dir / "frequencies", examples=plan.examples,
                             n_resamples=plan.n_resamples)
    timings["total"] = round(time.perf_counter() - start, 1)
    info = {
        "plan": asdict(plan),
        "command": f"lt-faceparse benchmark {'--quick ' if quick else ''}--out {out_dir}",
        "timings_s": timings,
        "data_root": str(root),
        "runs_dir": str(runs_dir),
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "skipped": outputs.skipped,
    }
    atomic_write_json(out_dir / "benchmark.json", info)
    from lt_faceparse.reporting.readme import write_readme

    write_readme(out_dir, outputs, info)
    log(f"benchmark done in {timings['total']:.0f} s -> {out_dir}")
    return out_dir


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
