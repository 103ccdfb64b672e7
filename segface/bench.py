"""Speed of SegFace per backbone and resolution, fast path vs literal formulation, and against BiSeNet.

Every timing comes from :func:`lt_faceparse.speed.measure_speed` (median wall clock of batch-1
forward passes after warm-up, ``torch.inference_mode``). On a shared machine single medians are
noisy, so the settings are measured in ``rounds`` interleaved rounds and the median over rounds is
reported. FLOPs: torch's ``FlopCounterMode`` (multiply-add = 2, convolutions/matmuls/attention only).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from lt_faceparse.speed import measure_speed
from segface.model import SegFace


def _segface(backbone: str, num_classes: int, literal: bool) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        model = SegFace(backbone, num_classes=num_classes)
        model.literal = literal
        return model
    return build


def _bisenet(num_classes: int) -> Callable[[], nn.Module] | None:
    try:
        from baselines.bisenet import BiSeNet
    except ImportError:
        return None
    return lambda: BiSeNet(num_classes=num_classes)


def bench_segface(
    backbones: Sequence[str] = ("mobilenet",),
    resolutions: Sequence[int] = (512,),
    *,
    devices: Sequence[str] = ("cpu",),
    num_classes: int = 19,
    literal: bool = True,
    bisenet: bool = True,
    channels_last: bool = False,
    rounds: int = 3,
    runs: int = 3,
    warmup: int = 1,
) -> list[dict[str, Any]]:
    """Rows ``{model, backbone, formulation, resolution, device, params, gflops, latency_ms_median, ...}``.

    ``literal`` adds SegFace's literal formulation (concatenation fusion, uncached positional
    encoding) next to the fast path; ``bisenet`` adds BiSeNet-ResNet18 (``baselines.bisenet``) as
    the reference face parser (skipped with a note when that module is missing);
    ``channels_last`` converts models and inputs to channels-last memory.
    """
    settings: list[tuple[dict[str, Any], Callable[[], nn.Module]]] = []
    for backbone in backbones:
        settings.append(({"model": "segface", "backbone": backbone, "formulation": "fast"},
                         _segface(backbone, num_classes, False)))
        if literal:
            settings.append(({"model": "segface", "backbone": backbone, "formulation": "literal"},
                             _segface(backbone, num_classes, True)))
    if bisenet:
        build = _bisenet(num_classes)
        if build is None:
            print("note: baselines.bisenet is missing; BiSeNet comparison skipped", file=sys.stderr)
        else:
            settings.append(({"model": "bisenet", "backbone": "resnet18", "formulation": "reference"}, build))

    rows = []
    for device in devices:
        for resolution in resolutions:
            models = [(info, build().to(device).eval()) for info, build in settings]
            if channels_last:
                models = [(info, m.to(memory_format=torch.channels_last)) for info, m in models]
            results: list[list[dict[str, Any]]] = [[] for _ in models]
            for r in range(rounds):
                for (info, model), out in zip(models, results):
                    out.append(measure_speed(model, resolution, 1, device, warmup=warmup if r == 0 else 0,
                                             runs=runs, flops=(r == 0), info=info))
            for out in results:
                row = dict(out[0])
                medians = [o["latency_ms_median"] for o in out]
                row["latency_ms_median"] = statistics.median(medians)
                row["latency_ms_rounds"] = medians
                row["fps"] = row["images_per_s"] = 1e3 / row["latency_ms_median"]
                row["channels_last"] = channels_last
                rows.append(row)
            del models
    return rows


def time_sections(model: SegFace, resolution: int, *, runs: int = 7, warmup: int = 2,
                  channels_last: bool = False) -> dict[str, float]:
    """Median milliseconds per part of a batch-1 SegFace pass on the CPU: ``backbone``, ``fusion``,
    ``block i`` (each two-way block), ``final attention`` (the transformer's rest: its last
    token-to-face attention), ``head`` (the decoder's rest: hypernetwork MLP and output head),
    ``other`` (the model's rest: positional encoding, checks) and ``total``.

    Each part is timed by forward hooks on its module, in the same passes, so the parts add up to
    ``total`` (each median is taken separately, so the medians need not add up exactly).
    """
    model = model.eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    transformer = model.face_decoder.transformer
    timed = {"backbone": model.backbone, "fusion": model.fusion, "decoder": model.face_decoder,
             "transformer": transformer, **{f"block {i}": b for i, b in enumerate(transformer.layers)}}
    starts: dict[str, float] = {}
    spans: dict[str, float] = {}
    handles = []
    for name, module in timed.items():
        handles.append(module.register_forward_pre_hook(lambda *_, n=name: starts.__setitem__(n, time.perf_counter())))
        handles.append(module.register_forward_hook(
            lambda *_, n=name: spans.__setitem__(n, time.perf_counter() - starts[n])))
    images = torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    if channels_last:
        images = images.to(memory_format=torch.channels_last)
    samples: dict[str, list[float]] = {}
    try:
        with torch.inference_mode():
            for i in range(warmup + runs):
                start = time.perf_counter()
                model(images)
                spans["total"] = time.perf_counter() - start
                if i < warmup:
                    continue
                blocks = sum(v for k, v in spans.items() if k.startswith("block "))
                parts = {k: v for k, v in spans.items() if k in ("backbone", "fusion", "total") or k.startswith("block ")}
                parts["final attention"] = spans["transformer"] - blocks
                parts["head"] = spans["decoder"] - spans["transformer"]
                parts["other"] = spans["total"] - spans["backbone"] - spans["fusion"] - spans["decoder"]
                for k, v in parts.items():
                    samples.setdefault(k, []).append(v * 1e3)
    finally:
        for h in handles:
            h.remove()
    order = ["backbone", "fusion", *(f"block {i}" for i in range(len(transformer.layers))),
             "final attention", "head", "other", "total"]
    return {k: statistics.median(samples[k]) for k in order}


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`bench_segface` rows, with how each number was obtained."""
    lines = [
        "| model | backbone | formulation | res | device | threads | params | GFLOPs | median ms | rounds (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rounds = ", ".join(f"{m:.0f}" for m in r["latency_ms_rounds"])
        lines.append(
            f"| {r['model']} | {r['backbone']} | {r['formulation']} | {r['resolution']} | {r['device']} | "
            f"{r['num_threads']} | {r['params']:,} | {r['gflops']:.2f} | {r['latency_ms_median']:.1f} | {rounds} |"
        )
    lines.append("")
    cpu = next((r for r in rows if r["device"] == "cpu"), None)
    memory = "" if cpu is None else (
        f" CPU huge pages for large tensors: THP_MEM_ALLOC_ENABLE={cpu.get('thp_mem_alloc_enable')}, "
        f"kernel THP mode {cpu.get('kernel_thp')}.")
    lines.append("Latency: batch 1, fp32, torch.inference_mode; per round the median of "
                 f"{rows[0]['runs'] if rows else '?'} timed passes, reported: median over rounds. "
                 f"GFLOPs: torch FlopCounterMode, one image, multiply-add = 2.{memory}")
    return "\n".join(lines)
