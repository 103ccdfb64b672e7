"""Training speed of SegFace: one optimizer step, the default path against the literal formulation, and
``lt-faceparse train`` end to end against the model-only step rate.

A *training step* is what the engine does per optimizer step without data loading: forward and loss
under autocast (bf16 on CUDA when asked; the CPU always runs fp32, as ``train`` does), backward, and
the AdamW update, on random images and labels already on the device. The settings:

- ``literal``: the paper's literal formulation, eager, ``torch.optim.AdamW`` with torch's defaults,
  the loss read on the host after every step: the training loop as it was before issue 12;
- ``default``: what ``lt-faceparse train`` runs by default on the device: formulation ``auto``
  (:mod:`segface.formulation`), ``compile: auto`` (:mod:`lt_faceparse.engine.compile`), AdamW
  fused on CUDA (:mod:`lt_faceparse.engine.optim`), values read on the host once per round
  (:mod:`lt_faceparse.engine.step_values`);
- ``default eager`` (only where ``default`` compiles): the same without torch.compile, to show
  what the formulation and the optimizer give alone;
- ``default channels-last`` (asked for): ``default`` with model and images in channels-last memory.

Settings are timed in interleaved rounds of ``steps`` consecutive steps (the device synchronised
before and after each round); a round's time per step is its wall time / ``steps``; reported: the
median over rounds. Untimed warm-up steps before the first round include any compilation.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from lt_faceparse.data.build import resolve_num_workers
from lt_faceparse.data.synthetic import ensure_synthface
from lt_faceparse.engine.compile import CompiledOrEager, resolve_compile
from lt_faceparse.engine.config import DEFAULTS, merge_dicts, validate_config
from lt_faceparse.engine.optim import build_optimizer, is_fused, step_unless
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.step_values import StepValues
from lt_faceparse.engine.train import train
from lt_faceparse.models import build_model
from lt_faceparse.speed.harness import DTYPES, device_name

OPTIM = {"lr": 1.0e-4, "betas": [0.9, 0.999], "weight_decay": 1.0e-5}  # the shipped configs' AdamW


@dataclass
class _Setting:
    name: str
    model: nn.Module
    forward: CompiledOrEager
    optimizer: torch.optim.Optimizer
    values: StepValues | None  # None: the loss is read on the host after every step
    channels_last: bool


def _setting(name: str, backbone: str, num_classes: int, device: torch.device) -> _Setting:
    model = build_model("segface", backbone=backbone, num_classes=num_classes).to(device).train()
    channels_last = name == "default channels-last"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if name == "literal":
        model.formulation = "literal"
        optimizer = torch.optim.AdamW(model.parameters(), lr=OPTIM["lr"], betas=tuple(OPTIM["betas"]),
                                      weight_decay=OPTIM["weight_decay"])
        return _Setting(name, model, CompiledOrEager(model, None), optimizer, None, False)
    mode = None if name == "default eager" else resolve_compile("auto", device, training=True)
    optimizer = build_optimizer(model.parameters(), OPTIM, device)
    return _Setting(name, model, CompiledOrEager(model, mode), optimizer, StepValues(defer=is_fused(optimizer)),
                    channels_last)


def _step(s: _Setting, images: torch.Tensor, labels: torch.Tensor, amp: torch.dtype | None,
          scaler: torch.amp.GradScaler) -> None:
    s.optimizer.zero_grad(set_to_none=True)
    if s.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(images.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        loss = s.model.loss(s.forward(images), labels)
    loss.backward()
    if s.values is None:
        s.optimizer.step()
        loss.detach().item()  # the host read of every step
    else:
        step_unless(s.optimizer, scaler, s.values.add(loss, None, epoch=0, step_in_epoch=0, global_step=0))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_step_rows(
    backbones: Sequence[str] = ("mobilenet",),
    *,
    device: str = "cpu",
    resolution: int = 128,
    batch_size: int = 8,
    precision: str = "bf16",
    channels_last: bool = False,
    num_classes: int = 19,
    rounds: int = 3,
    steps: int = 3,
    warmup: int = 2,
) -> list[dict[str, Any]]:
    """Time per training step of each setting (see the module docstring) per backbone.

    ``precision``: ``bf16`` or ``fp32`` (autocast applies on CUDA only, as in ``train``). Rows:
    ``{backbone, setting, formulation, compile, optimizer, ms_per_step (median), ms_rounds,
    images_per_s, ratio_to_literal, ...}``.
    """
    dev = torch.device(device)
    amp = DTYPES[precision] if dev.type == "cuda" and precision != "fp32" else None
    scaler = torch.amp.GradScaler(dev.type, enabled=False)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = dev.type == "cuda"  # as `train` runs on CUDA (unless deterministic)
    try:
        return _time_steps(backbones, dev, resolution, batch_size, amp, scaler, channels_last, num_classes,
                           rounds, steps, warmup, precision)
    finally:
        torch.backends.cudnn.benchmark = benchmark


def _time_steps(backbones: Sequence[str], dev: torch.device, resolution: int, batch_size: int,
                amp: torch.dtype | None, scaler: torch.amp.GradScaler, channels_last: bool, num_classes: int,
                rounds: int, steps: int, warmup: int, precision: str) -> list[dict[str, Any]]:
    names = ["literal", "default"]
    if resolve_compile("auto", dev, training=True) is not None:
        names.append("default eager")
    if channels_last:
        names.append("default channels-last")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, resolution, resolution, generator=generator).to(dev)
    labels = torch.randint(0, num_classes, (batch_size, resolution, resolution), generator=generator).to(dev)
    rows = []
    for backbone in backbones:
        settings = [_setting(name, backbone, num_classes, dev) for name in names]
        times: dict[str, list[float]] = {s.name: [] for s in settings}
        for s in settings:
            for _ in range(warmup):
                _step(s, images, labels, amp, scaler)
            if s.values is not None:
                s.values.read()
        for _ in range(rounds):
            for s in settings:
                _synchronize(dev)
                start = time.perf_counter()
                for _ in range(steps):
                    _step(s, images, labels, amp, scaler)
                if s.values is not None:
                    s.values.read()  # one log interval's host read
                _synchronize(dev)
                times[s.name].append((time.perf_counter() - start) / steps * 1e3)
        literal_ms = statistics.median(times["literal"])
        for s in settings:
            ms = statistics.median(times[s.name])
            rows.append({
                "kind": "train_step", "model": "segface", "backbone": backbone, "setting": s.name,
                "formulation": s.model.formulation_for(images).name if s.name != "literal" else "literal",
                "compile": s.forward.mode if s.forward.compiled else False,
                "optimizer": "AdamW fused" if is_fused(s.optimizer) else "AdamW (torch default)",
                "channels_last": s.channels_last, "resolution": resolution, "batch_size": batch_size,
                "precision": precision if amp is not None else "fp32", "device": dev.type,
                "device_name": device_name(dev), "num_threads": torch.get_num_threads(),
                "ms_per_step": ms, "ms_rounds": times[s.name], "images_per_s": batch_size * 1e3 / ms,
                "ratio_to_literal": ms / literal_ms, "rounds": rounds, "steps": steps, "warmup": warmup,
                "torch_version": torch.__version__,
            })
        del settings
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def format_step_rows(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`training_step_rows`, with how each number was obtained."""
    lines = ["| backbone | res | batch | precision | device | setting | formulation | compile | optimizer | "
             "ms / step | rounds (ms) | img/s | / literal |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rounds = ", ".join(f"{m:.1f}" for m in r["ms_rounds"])
        lines.append(f"| {r['backbone']} | {r['resolution']} | {r['batch_size']} | {r['precision']} | {r['device']} | "
                     f"{r['setting']}{' (channels-last)' if r['channels_last'] and 'channels' not in r['setting'] else ''}"
                     f" | {r['formulation']} | {r['compile'] or 'eager'} | {r['optimizer']} | {r['ms_per_step']:.1f} | "
                     f"{rounds} | {r['images_per_s']:.1f} | {r['ratio_to_literal']:.3f} |")
    lines.append("")
    if rows:
        r = rows[0]
        lines.append(f"One training step: forward + CE/Dice loss + backward + AdamW in {r['precision']} "
                     f"({'torch.autocast' if r['precision'] != 'fp32' else 'no autocast'}), "
                     f"random weights and data on the device, no data loading; per round {r['steps']} consecutive "
                     f"steps (device synchronised around the round), reported: median over {r['rounds']} interleaved "
                     f"rounds after {r['warmup']} untimed warm-up steps (compilation included there). "
                     f"literal: the loss read on the host every step (the loop before issue 12); default: once per round.")
    return "\n".join(lines)


def synthface_celebamask(cache_root: str | Path, resolution: int, num_images: int, *, seed: int = 0) -> Path:
    """A SynthFace-LT tree in CelebAMask-HQ's layout and proportions for ``resolution`` px training: masks at
    ``resolution``, JPEG images at twice that (1024 px images with 512 px masks, like the real set)."""
    return Path(ensure_synthface(cache_root, fmt="celebamask-hq", num_images=num_images, size=resolution, seed=seed,
                                 image_scale=2))


def train_end_to_end(
    root: str | Path,
    out: str | Path,
    *,
    backbone: str = "mobilenet",
    device: str = "cpu",
    resolution: int = 128,
    batch_size: int = 8,
    precision: str = "bf16",
    epochs: int = 2,
    num_workers: int | str = "auto",
    log_every: int = 5,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run :func:`lt_faceparse.engine.train.train` (the real engine, its defaults otherwise) on the CelebAMask-HQ
    tree at ``root`` (split ``all``, no validation) and return its speed.

    ``images_per_s``: the last epoch's rate from the engine's ``epoch`` line (its steps x batch / its
    wall time, the start of the epoch included); ``steady_images_per_s``: the median of that epoch's
    ``step`` lines (each the rate over the ``log_every`` steps before it). The first epoch pays
    compilation and worker start-up and is not used.
    """
    config = merge_dicts(DEFAULTS, {
        "model": {"name": "segface", "kwargs": {"backbone": backbone, "pretrained": False}},
        "data": {"dataset": "celebamask-hq", "root": str(root), "train_split": "all", "val_split": None,
                 "resolution": resolution, "num_workers": num_workers},
        "optim": {"epochs": epochs, "milestones": []},
        "batch": {"global": batch_size},
        "precision": precision, "device": device, "log_every": log_every, "out": str(out),
        **(overrides or {}),
    })
    validate_config(config)
    run = train(config)
    log = read_log(Path(run) / "log.jsonl")
    start = next(r for r in log if r["event"] == "start")
    last = [r for r in log if r["event"] == "epoch"][-1]
    steps = [r["images_per_s"] for r in log if r["event"] == "step" and r["epoch"] == last["epoch"]]
    return {
        "kind": "train_end_to_end", "backbone": backbone, "device": device, "resolution": resolution,
        "batch_size": batch_size, "precision": precision if torch.device(device).type == "cuda" else "fp32",
        "num_workers": resolve_num_workers(num_workers),
        "train_images": start["train_images"], "steps_per_epoch": start["steps_per_epoch"],
        "images_per_s": last["images_per_s"], "epoch_seconds": last["seconds"],
        "steady_images_per_s": statistics.median(steps) if steps else None, "run": str(run),
    }


def format_end_to_end(e2e: dict[str, Any], model_only: dict[str, Any] | None) -> str:
    """The end-to-end rate next to the model-only rate of the same settings (a ``default`` row of
    :func:`training_step_rows`), with the ratio and how both were obtained."""
    model_rate = None if model_only is None else model_only["images_per_s"]
    lines = ["| backbone | res | batch | precision | workers | train img/s (epoch) | train img/s (steady) | "
             "model-only img/s | epoch / model-only | steady / model-only |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def ratio(x: float | None) -> str:
        return "n/a" if x is None or not model_rate else f"{x / model_rate:.3f}"

    steady = e2e["steady_images_per_s"]
    lines.append(f"| {e2e['backbone']} | {e2e['resolution']} | {e2e['batch_size']} | {e2e['precision']} | "
                 f"{e2e['num_workers']} | {e2e['images_per_s']:.1f} | {'n/a' if steady is None else f'{steady:.1f}'} | "
                 f"{'n/a' if model_rate is None else f'{model_rate:.1f}'} | {ratio(e2e['images_per_s'])} | "
                 f"{ratio(steady)} |")
    lines.append("")
    lines.append(f"train: `lt-faceparse train`'s engine on SynthFace-LT in CelebAMask-HQ's layout ({e2e['train_images']} "
                 f"images, JPEG images at twice the mask size, masks at the input size, merged-label cache warm), "
                 f"default settings ({e2e['num_workers']} loader workers), last epoch of the run; epoch = its steps x "
                 "batch / its wall time, steady = median of its log-interval rates. model-only: the `default` "
                 "training-step row at the same backbone, resolution, batch and precision.")
    return "\n".join(lines)
