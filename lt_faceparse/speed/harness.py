"""Speed harness: parameters, FLOPs, latency, throughput and peak memory of a model.

Conventions (stated in every record under ``"conventions"``):

- **FLOPs** come from :class:`torch.utils.flop_counter.FlopCounterMode` over one steady-state
  inference pass of a single image (counted after one uncounted pass, so one-time caches such as
  folded weights are excluded): a multiply-add counts as 2 FLOPs, and only the operators torch's counter knows
  (convolutions, matrix products, attention) are counted; element-wise work and interpolation are
  not. ``gflops`` is ``flops / 1e9`` per image.
- **Latency** is wall-clock time of one forward pass of a whole batch, measured after ``warmup``
  untimed passes, with the device synchronised before starting and after finishing each pass.
  We report the median and the inter-quartile range (p75 - p25) over ``runs`` passes.
- **Throughput** ``images_per_s = batch_size / median latency``; ``fps`` is the same number (the
  papers' FPS is images per second at batch 1).
- **CPU memory**: each CPU record states ``thp_mem_alloc_enable`` (PyTorch's huge-page setting for
  large CPU tensors, which the ``lt-faceparse`` command turns on) and ``kernel_thp`` (the kernel's
  transparent-huge-page mode); see :mod:`lt_faceparse.runtime` for what they change.
- **Peak memory** is ``torch.cuda.max_memory_allocated`` during the timed passes on CUDA; on CPU
  torch keeps no allocator statistics, so it is ``None``.

Speed results are plain JSON records (``"kind": "speed"``) written atomically, one per setting,
so that the leaderboard and the reports can join them to result records by model, backbone and
resolution.
"""

from __future__ import annotations

import contextlib
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from lt_faceparse.atomic import atomic_write_json, read_json
from lt_faceparse.data.warp import TEMPLATE_512
from lt_faceparse.engine.compile import CompiledOrEager, resolve_compile
from lt_faceparse.engine.runner import BatchRunner
from lt_faceparse.runtime import huge_pages_setting
from lt_faceparse.terminal import progress_bar

SPEED_SCHEMA_VERSION = 1
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

CONVENTIONS = {
    "flops": "torch.utils.flop_counter.FlopCounterMode, one image, steady-state inference pass (after one "
    "uncounted pass), multiply-add = 2 FLOPs; convolutions/matmuls/attention only",
    "latency": "wall clock per batch forward after warm-up, device synchronised; median and IQR",
    "images_per_s": "batch_size / median latency",
    "peak_memory": "torch.cuda.max_memory_allocated over the timed passes (None on CPU)",
}


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def _example_input(resolution: int, batch_size: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, resolution, resolution, generator=generator)
    return images.to(device)


def count_flops(model: nn.Module, resolution: int, *, device: str | torch.device = "cpu") -> int:
    """FLOPs of one steady-state inference pass on one ``resolution x resolution`` image
    (multiply-add = 2). The pass is counted after one uncounted pass, so one-time work that a model
    caches for inference (e.g. SegFace's folded fusion weights, its positional encoding) is not
    charged to every image."""
    device = torch.device(device)
    images = _example_input(resolution, 1, device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(images)
            with FlopCounterMode(display=False) as counter:
                model(images)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


class TemplateFace(nn.Module):
    """``forward(images)`` of a :class:`~lt_faceparse.engine.runner.BatchRunner` for timing: a runner
    with a RoI warp gets the warp template's five landmarks scaled to the images (a centred face), so
    the timing includes the warp and its inverse; a runner without one runs its model plainly."""

    def __init__(self, runner: BatchRunner):
        super().__init__()
        self.runner = runner

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.runner.warp is None:
            return self.runner(images)
        height, width = images.shape[-2:]
        scale = torch.tensor([width / 512.0, height / 512.0], device=images.device)
        points = torch.tensor(TEMPLATE_512, device=images.device) * scale
        return self.runner(images, points.expand(images.shape[0], 5, 2))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover - no MPS here
        torch.mps.synchronize()


def _autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of already sorted values."""
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def device_name(device: torch.device) -> str:
    """Human-readable name of the device the timings were taken on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:  # Linux: the CPU model, e.g. "AMD EPYC 7B13"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _timed_passes(runner: nn.Module, images: torch.Tensor, device: torch.device, dtype: str, warmup: int,
                  runs: int) -> tuple[list[float], float | None]:
    """(seconds of each of ``runs`` synchronised passes after ``warmup`` untimed ones, peak CUDA MiB or None)."""
    times: list[float] = []
    with torch.inference_mode(), _autocast(device, dtype):
        for _ in range(warmup):
            runner(images)
        _synchronize(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(runs):
            _synchronize(device)
            start = time.perf_counter()
            runner(images)
            _synchronize(device)
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return times, peak


def measure_speed(
    model: nn.Module,
    resolution: int,
    batch_size: int,
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    compile: bool | str = False,
    warmup: int = 3,
    runs: int = 10,
    *,
    flops: bool = True,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time ``model`` on random ``batch_size x 3 x resolution x resolution`` inputs.

    ``compile``: a setting of :mod:`lt_faceparse.engine.compile` (True: CUDA graphs on CUDA,
    Inductor's default mode on the CPU); the record's ``compile`` says the mode used, or False.
    Returns a JSON-ready dict with latency (median, p25, p75, IQR in ms), ``images_per_s``/``fps``,
    ``params``, ``flops``/``gflops`` (per image), ``peak_memory_mb``, the settings, the device and
    the conventions. ``info`` (e.g. ``{"model": "segface", "backbone": "mobilenet_v3"}``) is copied
    into the result so records can be joined later.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if resolution <= 0 or batch_size <= 0 or runs <= 0 or warmup < 0:
        raise ValueError("resolution, batch_size and runs must be positive, warmup non-negative")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("measure_speed: CUDA requested but not available")

    model = model.to(device).eval()
    params = count_parameters(model)
    num_flops = count_flops(model, resolution, device=device) if flops else None
    mode = resolve_compile(compile, device, training=False)
    runner = CompiledOrEager(model, mode)
    images = _example_input(resolution, batch_size, device)

    times, peak = _timed_passes(runner, images, device, dtype, warmup, runs)
    ms = sorted(t * 1e3 for t in times)
    median = statistics.median(ms)
    p25, p75 = _percentile(ms, 0.25), _percentile(ms, 0.75)
    return {
        "kind": "speed",
        "schema_version": SPEED_SCHEMA_VERSION,
        **(info or {}),
        "resolution": int(resolution),
        "batch_size": int(batch_size),
        "device": device.type,
        "device_name": device_name(device),
        "dtype": dtype,
        "compile": mode if runner.compiled else False,
        "warmup": int(warmup),
        "runs": int(runs),
        "latency_ms_median": median,
        "latency_ms_p25": p25,
        "latency_ms_p75": p75,
        "latency_ms_iqr": p75 - p25,
        "images_per_s": batch_size * 1e3 / median,
        "fps": batch_size * 1e3 / median,
        "params": params,
        "flops": num_flops,
        "gflops": None if num_flops is None else num_flops / 1e9,
        "peak_memory_mb": peak,
        "num_threads": torch.get_num_threads(),
        **(huge_pages_setting() if device.type == "cpu" else {}),
        "torch_version": torch.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "conventions": CONVENTIONS,
    }


def speed_filename(result: dict[str, Any]) -> str:
    """Deterministic file name of a speed record (one file per setting)."""
    parts = [
        str(result.get("model", "model")),
        str(result.get("backbone") or "default"),
        f"r{result['resolution']}",
        f"b{result['batch_size']}",
        result["device"],
        result["dtype"],
    ]
    if result.get("compile"):
        parts.append("compiled")
    safe = "-".join(p.replace("/", "_").replace(" ", "_") for p in parts)
    return f"speed-{safe}.json"


def save_speed(result: dict[str, Any], out: str | Path) -> Path:
    """Write a speed record atomically; ``out`` is a ``.json`` path or a directory."""
    out = Path(out)
    path = out if out.suffix == ".json" else out / speed_filename(result)
    return atomic_write_json(path, result)


def load_speed(path: str | Path) -> dict[str, Any]:
    """Read and validate one speed record; errors name the file."""
    return read_json(path, "speed record", kind="speed",
                     required=("resolution", "batch_size", "device", "dtype", "latency_ms_median", "fps", "params"))


def find_speed_records(root: str | Path) -> list[dict[str, Any]]:
    """All speed records (``speed-*.json``) under ``root``, recursively, in path order."""
    root = Path(root)
    if root.is_file():
        return [load_speed(root)]
    return [load_speed(p) for p in sorted(root.rglob("speed-*.json"))]


def select_speed(
    records: Iterable[dict[str, Any]],
    *,
    model: str | None,
    backbone: str | None,
    resolution: int | None,
    batch_size: int = 1,
) -> dict[str, Any] | None:
    """The speed record matching a model setting (batch 1, fp32 preferred; newest wins on ties)."""
    matches = [
        r for r in records
        if r.get("model") == model
        and r.get("backbone") == backbone
        and (resolution is None or r["resolution"] == resolution)
        and r["batch_size"] == batch_size
    ]
    if not matches:
        return None
    matches.sort(key=lambda r: (r["dtype"] == "fp32", not r.get("compile"), r.get("created", "")))
    return matches[-1]


def speed_sweep(
    build: Any,
    resolutions: Iterable[int],
    batch_sizes: Iterable[int],
    *,
    device: str = "cpu",
    dtype: str = "fp32",
    compile: bool | str = False,
    warmup: int = 3,
    runs: int = 10,
    info: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Measure a model (``build()`` returns a fresh one) over resolutions x batch sizes.

    Each result is saved under ``out_dir`` when given. Shows a rich progress bar on a terminal.
    """
    settings = [(r, b) for r in resolutions for b in batch_sizes]
    model = build()
    results = []
    with progress_bar("speed", len(settings)) as bar:
        for res, batch in settings:
            bar.describe(f"speed r{res} b{batch}")
            result = measure_speed(model, res, batch, device, dtype, compile, warmup, runs, info=info)
            if out_dir is not None:
                save_speed(result, out_dir)
            results.append(result)
            bar.advance()
    return results
