"""The speed suite of ``scripts/bench_segface.py --train``: SegFace's default path against its literal
formulation in training and inference, and ``train`` end to end against the model-only rate.

Sections, all in one process (run in the order a, b, c: the end-to-end run is the longest, so that a run
cut short by its time limit still has the ratios of (a) and (b)):

(a) training step (:func:`lt_faceparse.speed.training.training_step_rows`), per backbone;
(b) inference (:func:`lt_faceparse.speed.segface.inference_ratio_rows`): batch 16 bf16 (default eager)
    and batch 1 fp32 (default eager and with the compile option) against literal eager;
(c) data loading and ``train`` end to end: one worker's time per image
    (:func:`lt_faceparse.speed.loading.per_item_ms`), the training loader's rate with the default
    workers (:func:`lt_faceparse.speed.loading.loader_images_per_s`), and the engine's images/s
    (:func:`lt_faceparse.speed.training.train_end_to_end`) next to the model-only rate of (a).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from lt_faceparse.data.build import auto_num_workers, build_dataset
from lt_faceparse.speed.loading import loader_images_per_s, per_item_ms
from lt_faceparse.speed.segface import INFERENCE_COMPARISONS, format_ratio_rows, inference_ratio_rows
from lt_faceparse.speed.training import (format_end_to_end, format_step_rows, synthface_celebamask,
                                         train_end_to_end, training_step_rows)


@dataclass
class BenchSettings:
    """What ``--train`` measures; :meth:`for_device` gives the defaults of a device."""

    device: str = "cpu"
    train_backbones: Sequence[str] = ("mobilenet",)
    train_resolution: int = 128
    train_batch: int = 8
    precision: str = "bf16"
    steps: int = 3
    rounds: int = 3
    warmup: int = 2
    channels_last: bool = False
    inference_backbones: Sequence[str] = ("mobilenet",)
    inference_resolution: int = 512
    inference_runs: int = 5
    inference_comparisons: Sequence[tuple[int, str, bool]] = INFERENCE_COMPARISONS
    e2e_backbone: str = "mobilenet"
    e2e_images: int = 64
    e2e_epochs: int = 2
    e2e_log_every: int = 2
    cache: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "lt_faceparse_bench")

    @classmethod
    def for_device(cls, device: str, **overrides: Any) -> "BenchSettings":
        """Full-size settings on CUDA (issue 12's: batch 8 at 512 px, MobileNetV3-L and Swin-B); on the
        CPU the issue's training comparison (MobileNetV3-L, 128 px, batch 8) and a small end-to-end run."""
        if torch.device(device).type == "cuda":
            base = dict(train_backbones=("mobilenet", "swin_base"), train_resolution=512, steps=10, rounds=5,
                        warmup=3, inference_backbones=("mobilenet", "swin_base"), inference_runs=20,
                        e2e_images=512, e2e_log_every=20)
        else:
            base = {}
        return cls(device=device, **{**base, **overrides})


def run_train_bench(settings: BenchSettings, *, sections: Sequence[str] = ("train", "inference", "end_to_end"),
                    on_section: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Measure the ``sections`` asked for, in the order (a), (b), (c): (c) reuses (a)'s compiled graphs
    from Inductor's cache and its model-only rate.

    Returns ``{"train": rows, "inference": rows, "loading": {...}, "end_to_end": {...}, "markdown": text}``;
    ``on_section(markdown, results so far)`` is called as each section is done (so that a run cut
    short still leaves what it measured).
    """
    s = settings
    out: dict[str, Any] = {}
    text: list[str] = []

    def emit(title: str, body: str) -> None:
        text.append(f"## {title}\n\n{body}\n")
        out["markdown"] = "\n".join(text)
        if on_section is not None:
            on_section(text[-1], out)

    train_rows: list[dict[str, Any]] = []
    if "train" in sections or "end_to_end" in sections:
        backbones = s.train_backbones if "train" in sections else (s.e2e_backbone,)
        train_rows = training_step_rows(backbones, device=s.device, resolution=s.train_resolution,
                                        batch_size=s.train_batch, precision=s.precision,
                                        channels_last=s.channels_last, rounds=s.rounds, steps=s.steps,
                                        warmup=s.warmup)
        out["train"] = train_rows
        emit("(a) training step: default path vs literal formulation", format_step_rows(train_rows))
    if "inference" in sections:
        rows = inference_ratio_rows(s.inference_backbones, device=s.device, resolution=s.inference_resolution,
                                    comparisons=s.inference_comparisons, rounds=s.rounds, runs=s.inference_runs)
        out["inference"] = rows
        emit("(b) inference: default path vs literal formulation", format_ratio_rows(rows))
    if "end_to_end" in sections:
        root = synthface_celebamask(s.cache, s.train_resolution, s.e2e_images)
        dataset = build_dataset("celebamask-hq", root, "all", resolution=s.train_resolution)
        workers = auto_num_workers()
        item = per_item_ms(dataset, items=min(len(dataset), 64))
        loading = loader_images_per_s(dataset, s.train_batch, workers, device=s.device)
        out["loading"] = {"per_item": item, "loader": loading}
        e2e = train_end_to_end(root, Path(tempfile.mkdtemp(prefix="e2e-", dir=s.cache)), backbone=s.e2e_backbone,
                               device=s.device, resolution=s.train_resolution, batch_size=s.train_batch,
                               precision=s.precision, epochs=s.e2e_epochs, log_every=s.e2e_log_every)
        out["end_to_end"] = e2e
        model_only = next((r for r in train_rows if r["backbone"] == s.e2e_backbone and r["setting"] == "default"),
                          None)
        per_worker = item["images_per_s_per_worker"]
        emit("(c) data loading and train end to end", "\n".join([
            f"One loader worker: {item['ms_per_item']:.1f} ms per image ({per_worker:.1f} images/s; dataset[i] of "
            f"{item['items']} images: JPEG decode, merged label from the warm cache, resize to "
            f"{s.train_resolution} px, normalise; one torch thread; median of {len(item['ms_rounds'])} passes). "
            f"Default workers here (auto): {workers}, i.e. at most {workers * per_worker:.0f} images/s; 16 workers: "
            f"{16 * per_worker:.0f} images/s. The training loader with {workers} workers measured "
            f"{loading['images_per_s']:.1f} images/s (median of {len(loading['epoch_rates'])} epochs after a first "
            f"one, batch {s.train_batch}, persistent workers, prefetch, collate"
            f"{', pinned memory, copied to the GPU' if torch.device(s.device).type == 'cuda' else ''}).",
            "",
            format_end_to_end(e2e, model_only),
        ]))
    return out
