"""The SynthFace-LT benchmark's plans: what each one generates, trains, times and reports
(``quick`` smoke run, ``default`` CPU plan, ``gpu`` plan), and the plan a results folder records."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lt_faceparse.atomic import read_json


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
    # train the rarity control and write the rarity-gap report (lt_faceparse.experiments.rarity_stage)
    rarity_control: bool = False
    # accessories' strokes and studs drawn at least this many pixels wide at the training ``resolution``
    # (SynthFace-LT's ``min_stroke``, scaled to ``image_size``); 0: their natural size
    accessory_stroke: float = 0.0
    flip: bool = False  # random horizontal flips in training (left/right classes swapped), every setting


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
# an augmentation (copy-paste), a loss (logit-adjusted CE), a sampler (repeat-factor, same epoch size) and
# the decoupled second stages (cRT, LWS: one class-balanced epoch after the plain schedule, started from
# the plain run's last checkpoint); and the two post-hoc options on the plain model (logit adjustment with
# Menon et al.'s tau = 1, flip TTA). The rarity stage adds post-hoc tau-norm, tau chosen on val.
_REMEDIES = ("copy_paste", "logit_adjusted", "repeat_factor", "crt", "lws")
# Accessories drawn at least 6 px wide (strokes) and across (earring studs) at the 64 px training
# resolution: at their natural size (about a pixel) even the rarity control could not segment them
# (control test F1 at 4 / 5 / 6 / 8 px: see reports/history.md, "Rarity or smallness")
_ACCESSORY_STROKE = 6.0
# The CPU plan's SegFace has a 128-wide decoder (the paper's 256 stays in the GPU plan): at 64 px the decoder is
# two thirds of a 256-wide training step, and the narrower one trains 1.7x faster, which buys the schedule that
# resolves every accessory in the rarity control (7 epochs instead of 4, random flips; control test F1 at 4 / 6 / 7
# epochs, with and without flips: reports/history.md, "A control that resolves every accessory").
_CPU_SEGFACE = ("segface", {**_MODELS[0][1], "dim": 128})
# To hold 15 minutes with the control, the CPU plan trains four full settings (the control, plain SegFace,
# copy-paste, BiSeNet) plus the cRT/LWS second stages, and leaves to the GPU plan the logit-adjusted loss (its
# post-hoc twin stays), repeat-factor sampling, FCN, SegFormer and the 32 px point of the resolution sweep
_CPU_REMEDIES = ("copy_paste", "crt", "lws")
_CPU_MODELS = (_CPU_SEGFACE, ("bisenet", {}))
_POSTHOC = (("posthoc_la", {"logit_adjust": 1.0}), ("flip_tta", {"tta": "flip"}))

QUICK = BenchmarkPlan(
    name="quick", num_images=80, image_size=64, splits=(0.6, 0.1, 0.3), resolution=64, epochs=1,
    milestones=(1,), batch=8, lr=2e-3, models=_MODELS[:2], sweep_resolutions=(), speed_resolutions=(64, 128),
    speed_backbones=(), speed_runs=3, n_resamples=200, examples=2, workers=2, remedies=("copy_paste", "crt"),
    posthoc=(("flip_tta", {"tta": "flip"}),),
    notes="smoke run: every stage on a few images; the numbers mean nothing",
    rarity_control=True, accessory_stroke=_ACCESSORY_STROKE, flip=True,
)

# 2-core CPU, within 15 minutes with the rarity control (the run time is in reports/README.md); every
# number measured on val (SegFace plain, see DESIGN.md "Choosing the CPU plan"): 64 px input (96 px
# gave a lower val head mean F1 at the same compute: fewer steps), batch 8 (batch 4: more steps but
# noisy BatchNorm statistics, val head 49-53 against 56-58), AdamW lr 2e-3 (4e-3: head 53 against 62; 3e-3 with
# flips: the control's val earring and necklace F1 fell to 29 and 12), 1,200 training images seen 7 times with
# random flips (the rarity control's val F1 at 4 epochs without flips, earring / necklace: 40 / 40; 7 epochs:
# 47 / 45; 7 with flips: 53 / 70); 600 test images hold about 40 eyeglasses, 33 hats, 150 earrings and 20 to 27
# necklaces for the bootstrap.
DEFAULT = BenchmarkPlan(
    name="default", num_images=2000, image_size=96, splits=(0.6, 0.1, 0.3), resolution=64, epochs=7,
    milestones=(6,), batch=8, lr=2e-3, models=_CPU_MODELS, sweep_resolutions=(),
    speed_resolutions=(64, 128, 256, 512), speed_backbones=("mobilenet", "resnet101", "efficientnet", "swin_base"),
    speed_runs=5, n_resamples=1000, examples=4, workers=2, remedies=_CPU_REMEDIES, posthoc=_POSTHOC,
    notes=("2-core CPU budget: every model and remedy trained from scratch (no ImageNet weights) with the same "
           "schedule (7 epochs, random flips), two settings side by side (one torch thread each); SegFace with a "
           "128-wide decoder (the paper's 256 in the GPU plan); MobileNetV3-Large through timm "
           "(BatchNorm momentum 0.1, see benchmark.py), BatchNorm statistics re-estimated on 20 training batches "
           "after the last epoch; accessories at least 6 px wide at 64 px; the rarity control (accessories "
           "at presence 0.5) trained with the same schedule; FCN, SegFormer, the logit-adjusted loss, repeat-factor "
           "sampling and the 32 px sweep point left to the GPU plan to keep the control within 15 minutes"),
    rarity_control=True, accessory_stroke=_ACCESSORY_STROKE, flip=True,
)

# One H100/H200 in under 10 minutes (not run yet; the sizing is in DESIGN.md "The GPU plan"): 256 px,
# bf16 autocast, 6,000 images generated in parallel (4,800 train), 8 epochs at batch 32, two trainings
# sharing the GPU.
GPU = BenchmarkPlan(
    name="gpu", num_images=6000, image_size=256, splits=(0.8, 0.05, 0.15), resolution=256, epochs=8,
    milestones=(6,), batch=32, lr=2e-3, models=_MODELS, sweep_resolutions=(128,),
    speed_resolutions=(64, 128, 256, 512), speed_backbones=("mobilenet", "resnet101", "efficientnet", "swin_base"),
    speed_runs=20, n_resamples=1000, examples=4, device="cuda", precision="bf16", workers=2, loader_workers=6,
    remedies=_REMEDIES, posthoc=_POSTHOC, rarity_control=True, accessory_stroke=_ACCESSORY_STROKE,
    notes="one CUDA GPU, bf16 autocast, every model from scratch with the same schedule, the rarity control",
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
    path = Path(out_dir) / "benchmark.json"
    if not path.is_file():
        return None
    info = read_json(path, "benchmark info")
    trained = info.get("trained_by") or {}
    plan = trained.get("plan") or info.get("plan")
    return plan_from_dict(plan) if plan else None
