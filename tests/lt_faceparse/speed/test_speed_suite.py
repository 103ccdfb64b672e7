"""scripts/bench_segface.py --train's library function: sections in order, each reported as soon as it is done."""

from __future__ import annotations

import pytest
import torch

from lt_faceparse.speed.suite import BenchSettings, run_train_bench


def test_cuda_defaults_are_the_issues_settings():
    cuda = BenchSettings.for_device("cuda")
    assert (cuda.train_backbones, cuda.train_resolution, cuda.train_batch, cuda.precision) == \
        (("mobilenet", "swin_base"), 512, 8, "bf16")
    assert cuda.inference_comparisons == ((16, "bf16", False), (1, "fp32", True))
    assert cuda.e2e_images == 512 and cuda.e2e_log_every == 20
    cpu = BenchSettings.for_device("cpu", steps=1)
    assert (cpu.train_backbones, cpu.train_resolution, cpu.steps) == (("mobilenet",), 128, 1)


@pytest.mark.slow
def test_sections_run_in_order_and_report_as_they_finish(tmp_path):
    torch.set_num_threads(1)
    settings = BenchSettings.for_device(
        "cpu", train_resolution=32, train_batch=2, steps=1, rounds=1, warmup=0, inference_resolution=32,
        inference_runs=1, inference_comparisons=((2, "fp32", False),), e2e_images=8, cache=tmp_path)
    seen = []
    out = run_train_bench(settings, on_section=lambda markdown, results: seen.append((markdown, sorted(results))))
    titles = [markdown.splitlines()[0] for markdown, _ in seen]
    assert titles == ["## (a) training step: default path vs literal formulation",
                      "## (b) inference: default path vs literal formulation",
                      "## (c) data loading and train end to end"]
    assert seen[0][1] == ["markdown", "train"]  # what had been measured when (a) was reported
    assert [r["setting"] for r in out["train"]] == ["literal", "default"]
    assert out["end_to_end"]["train_images"] == 8 and out["loading"]["loader"]["images_per_epoch"] == 8
    assert [r["setting"] for r in out["inference"]] == ["literal eager", "default eager"]
    assert out["markdown"] == "\n".join(markdown for markdown, _ in seen)
