"""Inference speed of SegFace per backbone and resolution: its formulations against each other and BiSeNet.

Every timing comes from :func:`lt_faceparse.speed.harness.measure_speed` (median wall clock of forward
passes after warm-up, ``torch.inference_mode``, the device synchronised around each pass). On a
shared machine single medians are noisy, so the settings are measured in ``rounds`` interleaved
rounds and the median over rounds is reported. FLOPs: torch's ``FlopCounterMode`` (multiply-add = 2,
convolutions/matmuls/attention only). Models come from the registry (:mod:`lt_faceparse.models`).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from lt_faceparse.engine.compile import CompiledOrEager, resolve_compile
from lt_faceparse.models import build_model, resolve_model
from lt_faceparse.speed.harness import measure_speed
from segface.formulation import choose_formulation


def segface_builder(backbone: str, num_classes: int, formulation: str) -> Callable[[], nn.Module]:
    """A function building a randomly initialised SegFace in ``formulation`` (see :mod:`segface.formulation`)."""
    def build() -> nn.Module:
        model = build_model("segface", backbone=backbone, num_classes=num_classes)
        model.formulation = formulation
        return model
    return build


def _bisenet(num_classes: int) -> Callable[[], nn.Module] | None:
    try:
        resolve_model("bisenet")
    except ImportError:
        return None
    return lambda: build_model("bisenet", num_classes=num_classes)


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

    SegFace runs in its default formulation (``"auto"``: the one :func:`segface.formulation.choose_formulation`
    picks for the device, named in the row, e.g. ``auto (cpu)``); ``literal`` adds the paper's literal
    formulation next to it; ``bisenet`` adds BiSeNet-ResNet18 as the reference face parser (skipped
    with a note when the ``baselines`` package is missing); ``channels_last`` converts models and
    inputs to channels-last memory.
    """
    settings: list[tuple[dict[str, Any], Callable[[], nn.Module]]] = []
    for backbone in backbones:
        settings.append(({"model": "segface", "backbone": backbone, "formulation": "auto"},
                         segface_builder(backbone, num_classes, "auto")))
        if literal:
            settings.append(({"model": "segface", "backbone": backbone, "formulation": "literal"},
                             segface_builder(backbone, num_classes, "literal")))
    if bisenet:
        build = _bisenet(num_classes)
        if build is None:
            print("note: the baselines package is missing; BiSeNet comparison skipped", file=sys.stderr)
        else:
            settings.append(({"model": "bisenet", "backbone": "resnet18", "formulation": "reference"}, build))

    rows = []
    for device in devices:
        for resolution in resolutions:
            models = [(_resolved(info, device), build().to(device).eval()) for info, build in settings]
            if channels_last:
                models = [(info, m.to(memory_format=torch.channels_last)) for info, m in models]
            for row in interleaved_speed(models, resolution, 1, device, rounds=rounds, runs=runs, warmup=warmup):
                row["channels_last"] = channels_last
                rows.append(row)
            del models
    return rows


def interleaved_speed(models: Sequence[tuple[dict[str, Any], nn.Module]], resolution: int, batch_size: int,
                      device: str, dtype: str = "fp32", *, rounds: int, runs: int, warmup: int | Sequence[int],
                      flops: bool = True) -> list[dict[str, Any]]:
    """:func:`~lt_faceparse.speed.harness.measure_speed` of each ``(info, model)`` in ``rounds`` interleaved rounds.

    One row per model: the first round's record with ``latency_ms_median`` the median over rounds
    (each round's median in ``latency_ms_rounds``) and ``images_per_s``/``fps`` from it. ``warmup``
    (one number, or one per model) untimed passes precede the first round only.
    """
    warmups = [warmup] * len(models) if isinstance(warmup, int) else list(warmup)
    results: list[list[dict[str, Any]]] = [[] for _ in models]
    for r in range(rounds):
        for (info, model), w, out in zip(models, warmups, results):
            out.append(measure_speed(model, resolution, batch_size, device, dtype, warmup=w if r == 0 else 0,
                                     runs=runs, flops=flops and r == 0, info=info))
    rows = []
    for out in results:
        row = dict(out[0])
        medians = [o["latency_ms_median"] for o in out]
        row["latency_ms_median"] = statistics.median(medians)
        row["latency_ms_rounds"] = medians
        row["fps"] = row["images_per_s"] = batch_size * 1e3 / row["latency_ms_median"]
        rows.append(row)
    return rows


# (batch, dtype, with the compile option): issue 12's acceptance settings, batch 16 eager, batch 1 compiled
INFERENCE_COMPARISONS = ((16, "bf16", False), (1, "fp32", True))


def inference_ratio_rows(
    backbones: Sequence[str] = ("mobilenet",),
    *,
    device: str = "cpu",
    resolution: int = 512,
    comparisons: Sequence[tuple[int, str, bool]] = INFERENCE_COMPARISONS,
    num_classes: int = 19,
    rounds: int = 3,
    runs: int = 10,
    warmup: int = 2,
) -> list[dict[str, Any]]:
    """SegFace inference, default path against the literal formulation, per backbone and comparison
    ``(batch, dtype, compiled)``.

    Settings, timed in interleaved rounds (:func:`interleaved_speed`): ``literal eager`` (the
    paper's formulation, plain PyTorch), ``default eager`` (formulation ``auto``, as ``FaceParser``
    runs by default) and ``default compiled`` (the same model under the compile option,
    ``FaceParser(compile=True)``: CUDA graphs on CUDA; compiled in the first round's warm-up, which
    is not timed; only where the comparison's ``compiled`` is true). Each row gets ``setting`` and
    ``ratio_to_literal`` (its median / the literal eager median of the same backbone, batch and
    dtype; below 1 is faster). ``compiled`` says whether the compiled path was still in use after
    timing (it falls back to eager on failure).
    """

    dev = torch.device(device)
    mode = resolve_compile(True, dev, training=False)
    rows: list[dict[str, Any]] = []
    for backbone in backbones:
        literal = segface_builder(backbone, num_classes, "literal")().to(dev).eval()
        default = segface_builder(backbone, num_classes, "auto")().to(dev).eval()
        compiled = CompiledOrEager(default, mode)
        base = {"model": "segface", "backbone": backbone}
        auto = _resolved({"formulation": "auto"}, device)["formulation"]
        for batch_size, dtype, with_compiled in comparisons:
            models = [({**base, "formulation": "literal", "setting": "literal eager"}, literal),
                      ({**base, "formulation": auto, "setting": "default eager"}, default),
                      ({**base, "formulation": auto, "setting": f"default compiled ({mode})"}, compiled)]
            timed = interleaved_speed(models[:3 if with_compiled else 2], resolution, batch_size, device, dtype,
                                      rounds=rounds, runs=runs, warmup=[warmup, warmup, warmup + 3], flops=False)
            reference = timed[0]["latency_ms_median"]
            for row in timed:
                row["ratio_to_literal"] = row["latency_ms_median"] / reference
                row["compiled"] = row["setting"].startswith("default compiled") and compiled.compiled
                rows.append(row)
        del literal, default, compiled
    return rows


def format_ratio_rows(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`inference_ratio_rows`, with how each number was obtained."""
    lines = ["| backbone | res | batch | dtype | device | setting | median ms | rounds (ms) | / literal eager |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rounds = ", ".join(f"{m:.1f}" for m in r["latency_ms_rounds"])
        setting = r["setting"] + ("" if r["setting"] == "literal eager" or "compiled" not in r["setting"]
                                  or r["compiled"] else " (compile FAILED: eager)")
        lines.append(f"| {r['backbone']} | {r['resolution']} | {r['batch_size']} | {r['dtype']} | {r['device']} | "
                     f"{setting} [{r['formulation']}] | {r['latency_ms_median']:.2f} | {rounds} | "
                     f"{r['ratio_to_literal']:.3f} |")
    lines.append("")
    lines.append("Latency: one forward pass of the whole batch, torch.inference_mode (bf16: torch.autocast), device "
                 "synchronised around each pass; per round the median of "
                 f"{rows[0]['runs'] if rows else '?'} passes, reported: median over interleaved rounds. Random "
                 "weights, NCHW inputs.")
    return "\n".join(lines)


def _resolved(info: dict[str, Any], device: str) -> dict[str, Any]:
    """``info`` with an ``auto`` formulation named as run on ``device`` in inference, e.g. ``auto (cpu)``."""
    if info.get("formulation") != "auto":
        return info

    return {**info, "formulation": f"auto ({choose_formulation(torch.device(device), grad=False).name})"}


def time_sections(model: nn.Module, resolution: int, *, runs: int = 7, warmup: int = 2,
                  channels_last: bool = False) -> dict[str, float]:
    """Median milliseconds per part of a batch-1 pass of a SegFace ``model`` on the CPU: ``backbone``, ``fusion``,
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
