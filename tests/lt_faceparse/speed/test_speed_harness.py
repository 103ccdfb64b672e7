import json

import pytest
import torch
import torch.nn as nn

from lt_faceparse.errors import DataError
from lt_faceparse.speed.harness import (
    count_flops,
    count_parameters,
    find_speed_records,
    load_speed,
    measure_speed,
    save_speed,
    select_speed,
    speed_filename,
)


class TwoLayer(nn.Module):
    """3 -> 4 conv (3x3, bias) then 4 -> 2 conv (1x1, no bias); weights tied to nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(x)))


def test_count_parameters_exact():
    model = TwoLayer()
    # conv1: 3*4*3*3 + 4 = 112; conv2: 4*2 = 8
    assert count_parameters(model) == 120
    model.conv2.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 112


def test_count_parameters_counts_shared_once():
    lin = nn.Linear(5, 5)
    model = nn.Sequential(lin, lin)
    assert count_parameters(model) == 30


def test_count_flops_by_hand():
    # multiply-add = 2 FLOPs; conv1: 2*3*4*9 per pixel, conv2: 2*4*2 per pixel, 16*16 pixels
    expected = (2 * 3 * 4 * 9 + 2 * 4 * 2) * 16 * 16
    assert count_flops(TwoLayer(), 16) == expected


class CachesWork(nn.Module):
    """Builds a 4x4 weight product on its first inference pass and reuses it afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.randn(4, 4))
        self.b = nn.Parameter(torch.randn(4, 3))
        self.folded = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded is None:
            self.folded = self.a @ self.b  # 2*4*4*3 = 96 FLOPs, once
        return torch.einsum("oc,bchw->bohw", self.folded, x)


def test_count_flops_excludes_one_time_caches():
    # steady state: only the per-pixel 4x3 projection, 2*4*3 FLOPs per pixel of an 8x8 image
    assert count_flops(CachesWork(), 8) == 2 * 4 * 3 * 64


def test_measure_speed_keys_and_values():
    result = measure_speed(TwoLayer(), 16, 2, "cpu", warmup=1, runs=5, info={"model": "two", "backbone": None})
    assert result["kind"] == "speed"
    assert result["model"] == "two"
    assert result["resolution"] == 16 and result["batch_size"] == 2
    assert result["params"] == 120
    assert result["flops"] == (2 * 3 * 4 * 9 + 2 * 4 * 2) * 256
    assert result["gflops"] == pytest.approx(result["flops"] / 1e9)
    assert result["latency_ms_p25"] <= result["latency_ms_median"] <= result["latency_ms_p75"]
    assert result["latency_ms_iqr"] == pytest.approx(result["latency_ms_p75"] - result["latency_ms_p25"])
    assert result["images_per_s"] == pytest.approx(2e3 / result["latency_ms_median"])
    assert result["peak_memory_mb"] is None  # CPU: no allocator statistics
    assert result["runs"] == 5 and result["dtype"] == "fp32"
    json.dumps(result)  # JSON-ready


def test_measure_speed_bf16_autocast_on_cpu():
    result = measure_speed(TwoLayer(), 8, 1, "cpu", dtype="bf16", warmup=0, runs=2, flops=False)
    assert result["dtype"] == "bf16" and result["flops"] is None


def test_measure_speed_rejects_bad_settings():
    with pytest.raises(ValueError, match="dtype"):
        measure_speed(TwoLayer(), 8, 1, "cpu", dtype="int8")
    with pytest.raises(ValueError):
        measure_speed(TwoLayer(), 0, 1, "cpu")


def test_speed_records_round_trip_and_select(tmp_path):
    base = measure_speed(TwoLayer(), 8, 1, "cpu", warmup=0, runs=2, info={"model": "two", "backbone": "a"})
    other = dict(base, backbone="b", fps=1.0)
    batch8 = dict(base, batch_size=8)
    paths = [save_speed(r, tmp_path / "sub") for r in (base, other, batch8)]
    assert paths[0].name == speed_filename(base) == "speed-two-a-r8-b1-cpu-fp32.json"
    assert load_speed(paths[0]) == json.loads(json.dumps(base))
    found = find_speed_records(tmp_path)
    assert len(found) == 3
    assert select_speed(found, model="two", backbone="b", resolution=8)["fps"] == 1.0
    assert select_speed(found, model="two", backbone="a", resolution=8)["batch_size"] == 1
    assert select_speed(found, model="two", backbone="a", resolution=64) is None


def test_load_speed_names_the_file(tmp_path):
    bad = tmp_path / "speed-x.json"
    bad.write_text('{"kind": "record"}')
    with pytest.raises(DataError, match="speed-x.json"):
        load_speed(bad)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measure_speed_cuda_bf16_reports_peak_memory():
    result = measure_speed(TwoLayer(), 64, 4, "cuda", dtype="bf16", warmup=2, runs=5)
    assert result["device"] == "cuda"
    assert result["peak_memory_mb"] > 0
    assert result["fps"] > 0


def test_measure_speed_records_the_compile_mode(monkeypatch):
    from lt_faceparse.engine import compile as compile_module

    modes = []
    monkeypatch.setattr(compile_module.torch, "compile", lambda module, mode=None: modes.append(mode) or module)
    result = measure_speed(TwoLayer(), 8, 1, "cpu", compile=True, warmup=0, runs=1, flops=False)
    assert modes == ["default"] and result["compile"] == "default"  # Inductor's default mode on the CPU
    assert speed_filename(result).endswith("-compiled.json")
    assert measure_speed(TwoLayer(), 8, 1, "cpu", warmup=0, runs=1, flops=False)["compile"] is False
